"""One preset API for every config with presets: `Config.preset(name, **overrides)`."""

import pytest

from mugv_align import AlignConfig
from mugv_data.config import CurateConfig
from mugv_dit import DiTConfig
from mugv_train import TrainConfig
from mugv_train.vae import VAETrainConfig
from mugv_vae import VAEConfig

REQUIRED = {CurateConfig: {"input": "videos", "output": "curated"}}
CASES = [  # (class, preset, a top-level field, a value other than the preset's)
    (DiTConfig, "debug", "depth", 3),
    (VAEConfig, "tiny", "window_latents", 2),
    (CurateConfig, "default", "workers", 3),
    (TrainConfig, "debug", "run_dir", "runs/elsewhere"),
    (VAETrainConfig, "vae-tiny", "seed", 7),
    (AlignConfig, "debug", "run_dir", "runs/elsewhere"),
]


@pytest.mark.parametrize(("cls", "name", "field", "value"), CASES, ids=lambda v: getattr(v, "__name__", None))  # fmt: skip
def test_preset_overrides_one_field_and_keeps_the_rest(cls, name, field, value):
    required = REQUIRED.get(cls, {})
    base = cls.preset(name, **required)
    changed = cls.preset(name, **required, **{field: value})
    assert type(base) is cls and type(changed) is cls
    assert getattr(base, field) != value and getattr(changed, field) == value
    assert changed.model_dump(exclude={field}) == base.model_dump(exclude={field})


@pytest.mark.parametrize("cls", [c for c, *_ in CASES], ids=lambda c: c.__name__)
def test_unknown_preset_names_the_choices(cls):
    with pytest.raises(ValueError, match=r"unknown .*preset 'nope'.*choose one of"):
        cls.preset("nope")


@pytest.mark.parametrize(("cls", "name", "field", "value"), CASES, ids=lambda v: getattr(v, "__name__", None))  # fmt: skip
def test_unknown_override_is_refused(cls, name, field, value):
    with pytest.raises(ValueError, match="not_a_field"):
        cls.preset(name, **REQUIRED.get(cls, {}), not_a_field=1)
