import re

import mugv_dit


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_dit.__version__)
    assert "__version__" in mugv_dit.__all__
