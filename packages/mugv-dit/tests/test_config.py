import pytest
import torch
from pydantic import ValidationError

from mugv_dit import DiTConfig, MUGDiT

# Parameter counts of the presets, built on the meta device (no memory).
EXPECTED = {
    "debug": 1_564_464,
    "1b": 1_208_059_968,
    "2b": 2_712_853_632,
    "4b": 4_818_161_856,
    "10b": 10_830_321_984,
    "18b": 19_244_540_352,
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_parameter_counts(name):
    with torch.device("meta"):
        model = MUGDiT(DiTConfig.preset(name))
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[name]
    assert model.config.head_dim == 72


def test_10b_matches_paper_width():
    cfg = DiTConfig.preset("10b")
    assert (cfg.hidden_size, cfg.num_heads, cfg.depth) == (3456, 48, 56)


def test_bad_configs_are_rejected_with_reasons():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        DiTConfig(hidden_size=100, num_heads=3)
    with pytest.raises(ValueError, match="multiple of 6"):
        DiTConfig(hidden_size=128, num_heads=2)
    with pytest.raises(ValidationError, match="extra"):
        DiTConfig(hidden=1)
    with pytest.raises(ValueError, match="unknown DiT preset"):
        DiTConfig.preset("3b")


def test_meta_build_then_materialise_and_init():
    with torch.device("meta"):
        model = MUGDiT(DiTConfig.preset("debug"))
    assert model.start_token.is_meta
    model.to_empty(device="cpu")
    model.init_weights(torch.Generator().manual_seed(0))
    assert torch.all(model.final_layer.linear.weight == 0)
    assert torch.all(model.blocks[0].attn.q_norm.weight == 1)
    std = model.blocks[0].attn.qkv.weight.std().item()
    assert abs(std - 0.014) < 0.002
    out_std = model.blocks[0].mlp.fc2.weight.std().item()
    assert abs(out_std - 0.014 / 2) < 0.001  # / sqrt(2 * depth), depth 2
