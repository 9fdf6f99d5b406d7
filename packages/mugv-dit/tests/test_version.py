import re

import mugv_dit


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_dit.__version__)
    assert mugv_dit.__all__[0] == "__version__"
