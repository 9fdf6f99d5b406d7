import re

import mugv_data


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_data.__version__)
    assert mugv_data.__all__[0] == "__version__"
