import re

import mugv_vae


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_vae.__version__)
    assert mugv_vae.__all__[0] == "__version__"
