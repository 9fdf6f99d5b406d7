"""Latent shard schema: round trips and errors that name shard, sample and field."""

from __future__ import annotations

import pytest
import torch
from latent_utils import T5, VAE, sample, write_dataset

from mugv_data.shards.latent import (
    LatentExpect,
    LatentFormatError,
    LatentShardWriter,
    iter_latent_shard,
    latent_frames,
)
from mugv_data.shards.tar import load_index
from mugv_data.validate import inspect_shard, validate_dir


def test_latent_frames_matches_the_vae():
    assert [latent_frames(f) for f in (1, 9, 17, 105, 73, 16)] == [1, 2, 3, 14, 10, 2]


def test_round_trip_is_exact(tmp_path):
    s = sample("a", 17)
    with LatentShardWriter(tmp_path) as w:
        w.write(s)
    (shard,) = tmp_path.glob("*.tar")
    (back,) = iter_latent_shard(shard, LatentExpect(VAE, T5))
    assert torch.equal(back.latent, s.latent) and torch.equal(back.text, s.text)
    assert back.text.dtype == torch.bfloat16 and back.text_mask.dtype == torch.bool
    assert (back.caption, back.fps, back.num_frames, back.tasks) == (
        s.caption,
        24.0,
        17,
        ["t2v", "i2v"],
    )
    assert load_index(shard)[0]["key"] == "a"
    assert inspect_shard(shard)["first"][0]["latent_shape"] == [24, 3, 8, 12]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: setattr(s, "latent", torch.zeros(16, 3, 8, 12)), "latent"),
        (lambda s: setattr(s, "num_frames", 25), "latent"),
        (lambda s: setattr(s, "width", 100), "latent"),
        (lambda s: setattr(s, "text", torch.zeros(7, 1024)), "text"),
        (lambda s: setattr(s, "text_mask", torch.ones(5, dtype=torch.bool)), "text_mask"),
        (lambda s: setattr(s, "text", torch.zeros(301, 4096)), "text"),
        (lambda s: setattr(s, "tasks", ["dance"]), "tasks"),
    ],
)
def test_writer_refuses_bad_samples_naming_the_field(tmp_path, mutate, field):
    s = sample("bad")
    mutate(s)
    with (
        pytest.raises(LatentFormatError, match=f"sample bad: field '{field}'"),
        LatentShardWriter(tmp_path) as w,
    ):
        w.write(s)
    assert not list(tmp_path.glob("*.tar")) and not list(tmp_path.glob(".*"))


def test_reader_refuses_other_encoders_and_corrupt_bytes(tmp_path):
    write_dataset(tmp_path, n=3)
    (shard,) = tmp_path.glob("*.tar")
    with pytest.raises(LatentFormatError, match=r"latent-000000.tar: sample s0000: field 'vae_id'"):
        list(iter_latent_shard(shard, LatentExpect(vae_id="other-vae")))
    data = bytearray(shard.read_bytes())
    entry = load_index(shard)[1]
    off, _ = entry["files"]["safetensors"]
    data[off : off + 16] = b"\xff" * 16
    shard.write_bytes(bytes(data))
    with pytest.raises(LatentFormatError, match="sample s0001: cannot decode"):
        list(iter_latent_shard(shard))
    _, problems = validate_dir(tmp_path)
    assert len(problems) == 1 and "s0001" in problems[0]
