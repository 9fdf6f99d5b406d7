import re

import mugv_align


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_align.__version__)
    assert "__version__" in mugv_align.__all__
