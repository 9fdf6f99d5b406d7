import json

import pytest
import torch
from safetensors.torch import load_file

import mugv_dit.checkpoint as ckpt
from mugv_dit import DiTConfig, MUGDiT


def test_save_load_round_trip_is_exact(tiny, make_inputs, tmp_path):
    tiny.save_pretrained(tmp_path / "m")
    loaded = MUGDiT.from_pretrained(tmp_path / "m").eval()
    assert loaded.config == tiny.config
    inp = make_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inp), tiny(**inp), rtol=0, atol=0)


def test_sharded_folder_is_readable_without_mugv(tiny, tmp_path):
    folder = tiny.save_pretrained(tmp_path / "m", max_shard_bytes=1_000_000)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    state = {}
    for shard in shards:  # plain safetensors, no mugv code involved
        state.update(load_file(folder / shard))
    assert state.keys() == tiny.state_dict().keys()
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "mugv-dit" and config["hidden_size"] == 144


def test_dtype_and_device_on_load(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "m")
    loaded = MUGDiT.from_pretrained(tmp_path / "m", dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


def test_failed_save_keeps_the_previous_checkpoint(tiny, tmp_path, monkeypatch):
    tiny.save_pretrained(tmp_path / "m")
    before = (tmp_path / "m" / "model-00001-of-00001.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        MUGDiT(DiTConfig.preset("debug", text_dim=32)).save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model-00001-of-00001.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left


def test_from_pretrained_rejects_other_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        MUGDiT.from_pretrained(tmp_path)
