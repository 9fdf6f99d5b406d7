import re

import mugv_train


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_train.__version__)
    assert "__version__" in mugv_train.__all__
