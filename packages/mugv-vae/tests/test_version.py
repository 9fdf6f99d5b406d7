import re

import mugv_vae


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_vae.__version__)
    assert "__version__" in mugv_vae.__all__
