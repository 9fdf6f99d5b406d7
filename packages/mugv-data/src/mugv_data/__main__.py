import sys

from mugv_data.cli import main

sys.exit(main())
