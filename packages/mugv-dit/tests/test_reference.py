"""Released-weight compatibility: the reference layout loads and reproduces reference outputs.

data/reference_golden.safetensors holds fp16 random weights in the MUG-V `dit.pt` layout
(hidden 144, heads 2, depth 1, text_dim 32), inputs, and the velocity computed by the reference
implementation (Shopee-MUG/MUG-V @ b2fe748, mug_v/dit). See tools/make_reference_golden.py.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mugv_dit import MUGDiT

GOLDEN = Path(__file__).parent / "data" / "reference_golden.safetensors"
# A copy of shared/reference/dit_keys.txt, the key/shape list of the released dit.pt.
REFERENCE_KEYS = Path(__file__).parent / "data" / "dit_keys.txt"


@pytest.fixture(scope="module")
def golden():
    tensors = load_file(GOLDEN)
    weights = {
        k.removeprefix("weight."): v.float() for k, v in tensors.items() if k.startswith("weight.")
    }
    inputs = {k.removeprefix("input."): v for k, v in tensors.items() if k.startswith("input.")}
    return weights, inputs, tensors["output.velocity"]


def test_reference_outputs_are_reproduced(golden):
    weights, inputs, expected = golden
    model = MUGDiT.from_reference(weights).eval()
    assert (model.config.hidden_size, model.config.num_heads, model.config.depth) == (144, 2, 1)
    with torch.no_grad():
        out = model(**inputs)
    # fp32 on CPU: measured max abs difference 2.9e-6 against outputs of mean magnitude 1.6.
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=2e-5)


def test_reference_pt_file_loads_with_weights_only(golden, tmp_path):
    weights, inputs, expected = golden
    path = tmp_path / "dit.pt"
    torch.save(weights, path)
    model = MUGDiT.from_reference(path, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs), expected, rtol=1e-5, atol=2e-5)


def test_our_keys_equal_the_released_key_list():
    """Every key and shape of the released list (hidden 144, heads 2, depth 1)."""
    listed = {}
    for line in REFERENCE_KEYS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            listed[key] = tuple(int(s) for s in shape.strip("[]").split(","))
    state = {k: torch.empty(s) for k, s in listed.items()}
    model = MUGDiT.from_reference(state)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == listed
    assert model.config.text_dim == 4096 and model.config.in_channels == 24


def test_missing_unexpected_and_misshaped_keys_are_named(golden):
    weights, _, _ = golden
    broken = dict(weights)
    del broken["blocks.0.mlp.fc2.bias"]
    broken["blocks.0.extra.weight"] = torch.zeros(3)
    broken["final_layer.linear.bias"] = torch.zeros(7)
    with pytest.raises(ValueError) as err:
        MUGDiT.from_reference(broken)
    msg = str(err.value)
    assert "missing keys: blocks.0.mlp.fc2.bias" in msg
    assert "unexpected keys: blocks.0.extra.weight" in msg
    assert "final_layer.linear.bias: checkpoint (7,) vs model (192,)" in msg


def test_non_dit_state_dict_is_rejected():
    with pytest.raises(ValueError, match="not a MUG-V DiT state dict"):
        MUGDiT.from_reference({"encoder.weight": torch.zeros(1)})


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dit\.pt"):
        MUGDiT.from_reference(tmp_path / "nope.pt")
