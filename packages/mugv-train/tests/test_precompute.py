"""precompute: raw shards -> latent shards with a tiny random VAE and T5, then training reads them."""

import json

import numpy as np
import pytest
import torch
from synth import tiny_config
from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

from mugv_data import LatentLoader, LoaderConfig
from mugv_data.io.video import encode_mp4
from mugv_data.shards.raw import RAW_SCHEMA, raw_index_meta
from mugv_data.shards.tar import ShardWriter
from mugv_train import train
from mugv_train.precompute import Options, load_encoders, precompute
from mugv_vae import MUGVAE, VAEConfig


def _clip(frames, h, w, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return np.stack([np.roll(base, 2 * i, axis=1) for i in range(frames)])


def _raw_shard(root, name, clips):
    w = ShardWriter(root, name, meta_of=raw_index_meta)
    for key, mp4, extra in clips:
        meta = {"schema": RAW_SCHEMA, "id": key, "caption": f"clip {key}", "fps": 24.0,
                "num_frames": 9, "width": 50, "height": 40, "source": {"path": "synthetic"}, **extra}  # fmt: skip
        w.write(key, {"mp4": mp4, "json": json.dumps(meta).encode()})
    w.commit()


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    torch.manual_seed(0)
    MUGVAE(VAEConfig.preset("tiny")).save_pretrained(root / "vae")
    T5EncoderModel(T5Config(vocab_size=384, d_model=4096, d_kv=8, d_ff=16, num_layers=1, num_heads=2)).save_pretrained(root / "t5")  # fmt: skip
    ByT5Tokenizer().save_pretrained(root / "t5")
    return load_encoders(str(root / "vae"), str(root / "t5"), "cpu", torch.float32, torch.float32)


def test_precompute_writes_accounts_resumes_and_trains(tmp_path, encoders):
    raw = tmp_path / "raw"
    good = [(f"c{i}", encode_mp4(_clip(9, 40, 50, i), fps=24.0), {"scores": {"aesthetic": 5.25}}) for i in range(3)]  # fmt: skip
    _raw_shard(
        raw,
        "a",
        [
            *good[:2],
            ("broken", b"not an mp4 at all", {"scores": {}}),
            ("mute", good[0][1], {"caption": None, "scores": {}}),
        ],
    )
    bad_meta = ShardWriter(raw, "c", meta_of=raw_index_meta)
    bad_meta.write("nometa", {"mp4": good[0][1], "json": b'{"schema": "mugv-raw/1"}'})
    bad_meta.commit()
    _raw_shard(raw, "b", [good[2]])
    out = tmp_path / "latents"
    report = precompute(str(raw), out, encoders, Options(images_per_clip=1))
    assert report.written == 6 and report.shards_done == 3
    assert [f["key"] for f in report.failed] == ["broken", "mute", "nometa"]
    assert "no caption" in report.failed[1]["reason"] and "lacks" in report.failed[2]["reason"]
    failures = [json.loads(x) for x in (out / "precompute-failures.rank00000.jsonl").read_text().splitlines()]  # fmt: skip
    assert failures[0]["key"] == "broken" and failures[0]["reason"]
    journal = [json.loads(x) for x in (out / "precompute-journal.rank00000.jsonl").read_text().splitlines()]  # fmt: skip
    assert [(j["written"], j["failed"]) for j in journal] == [(4, 2), (2, 0), (0, 1)]
    assert (out / "null_text.safetensors").exists()

    loader = LatentLoader(
        LoaderConfig(shards=str(out), num_workers=0, vae_id="vae"), rank=0, world=1
    )
    assert loader.num_samples == 6
    metas = {e["key"]: e["meta"] for e in loader.entries}
    assert metas["c0"]["latent_shape"] == [24, 2, 4, 6]  # 40x50 px cropped to 32x48 -> /8
    assert metas["c0_img0"]["latent_shape"] == [24, 1, 4, 6] and metas["c0_img0"]["num_frames"] == 1
    assert metas["c0"]["caption"] == "clip c0 aesthetic score: 5.2."  # 5.25 -> one decimal

    again = precompute(str(raw), out, encoders)
    assert again.shards_skipped == 3 and again.written == 0 and not again.failed

    cfg = tiny_config(out, tmp_path / "run", objective={"caption_dropout": 0.5, "null_text": str(out / "null_text.safetensors")})  # fmt: skip
    cfg = cfg.model_copy(update={"stages": cfg.stages[:1]})
    result = train(cfg, device="cpu")
    assert result.status == "done" and result.step == 4
