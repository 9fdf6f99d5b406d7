import re

import mugv_data


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_data.__version__)
    assert "__version__" in mugv_data.__all__
