import re

import mugv_infer


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mugv_infer.__version__)
    assert "__version__" in mugv_infer.__all__
