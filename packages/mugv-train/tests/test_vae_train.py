"""VAE training on the engine (tiny MUGVAE, CPU): raw shards -> clips -> recon + GAN stages,
held-out PSNR/SSIM, exact resume, export to a mugv-vae release, CLI errors."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from mugv_data.io.video import encode_mp4
from mugv_data.shards.raw import RAW_SCHEMA, raw_index_meta
from mugv_data.shards.tar import ShardWriter
from mugv_train.cli import main
from mugv_train.config import ConfigError
from mugv_train.metrics import read_metrics
from mugv_train.vae import export_vae, load_vae_config, train_vae
from mugv_train.vae.data import ClipLoader, heldout_clips, index_clips
from mugv_vae import MUGVAE, VAEConfig, psnr

FRAMES = 12  # source clips: 12 frames of 40x48 px; the vae-tiny preset takes 9 at 16x16
# Held-out PSNR the tiny VAE must reach after the vae-tiny preset's 15 steps, and its least gain
# over the untrained model (measured: 13.31 dB, +2.76 dB; docs/vae-training.md).
PSNR_FLOOR, PSNR_GAIN = 12.5, 1.5


def _clip(seed: int) -> np.ndarray:
    """[FRAMES, 40, 48, 3] uint8: smooth colour blobs drifting a pixel per frame."""
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(80, 96), mode="bicubic")
    dx, dy = (torch.randint(-1, 2, (2,), generator=g)).tolist()
    frames = [field[0, :, 20 + dy * t : 60 + dy * t, 24 + dx * t : 72 + dx * t] for t in range(FRAMES)]  # fmt: skip
    return (torch.stack(frames).permute(0, 2, 3, 1).clamp(0, 1) * 255).to(torch.uint8).numpy()


def write_raw_shards(root: Path, clips: int, seed: int, shards: int = 2) -> Path:
    """`clips` raw samples (mugv-raw/1) spread over `shards` tar files."""
    writer = ShardWriter(root, "raw", max_samples=-(-clips // shards), meta_of=raw_index_meta)
    for i in range(clips):
        key = f"c{seed:02d}_{i:03d}"
        meta = {"schema": RAW_SCHEMA, "id": key, "caption": "blobs", "fps": 8.0, "num_frames": FRAMES,
                "width": 48, "height": 40, "scores": {}, "source": {"path": "synthetic"}}  # fmt: skip
        writer.write(key, {"mp4": encode_mp4(_clip(seed * 1000 + i), 8.0, crf=4), "json": json.dumps(meta).encode()})  # fmt: skip
        writer.rotate_if_full()
    writer.close()
    return root


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("raw")
    return write_raw_shards(root / "train", 12, seed=1), write_raw_shards(root / "heldout", 4, seed=2, shards=1)  # fmt: skip


def _config(raw, run_dir: Path, *overrides: str):
    train, heldout = raw
    base = [f"data.shards={json.dumps(str(train))}", f"data.heldout={json.dumps(str(heldout))}",
            f"run_dir={json.dumps(str(run_dir))}", "metrics.progress=false", "metrics.tensorboard=false"]  # fmt: skip
    return load_vae_config("vae-tiny", [*base, *overrides])


@pytest.fixture(scope="module")
def trained(raw, tmp_path_factory) -> Path:
    """The vae-tiny preset run end to end (12 recon + 3 GAN steps), checkpoints at 13 and 15."""
    run_dir = tmp_path_factory.mktemp("vae") / "run"
    result = train_vae(_config(raw, run_dir, "checkpoint.every=13"), device="cpu")
    assert (result.step, result.status, result.nonfinite_steps) == (15, "done", 0)
    return run_dir


def test_heldout_psnr_clears_the_floor(trained, raw):
    rows = read_metrics(trained)
    assert [r["step"] for r in rows] == list(range(15))
    evals = [r for r in rows if "heldout_psnr" in r]
    assert [r["step"] for r in evals] == [4, 9, 14]  # every 5 steps and the last one
    assert evals[-1]["heldout_psnr"] >= PSNR_FLOOR
    assert 0 < evals[-1]["heldout_ssim"] <= 1
    assert {r["window"] for r in rows} == {1, 4, 8}
    gan = [r for r in rows if r["stage"] == 1]
    assert len(gan) == 3 and all({"gan", "gan_adaptive_weight", "disc"} <= r.keys() for r in gan)
    assert not any("gan" in r for r in rows if r["stage"] == 0)
    torch.manual_seed(0)  # the run's seed: the weights training started from
    untrained = MUGVAE(VAEConfig.preset("tiny"))
    clips = heldout_clips(str(raw[1]), _config(raw, trained).data, 4)[0]
    with torch.no_grad():
        before = float(psnr(untrained(clips, sample=False).recon, clips).mean())
    assert evals[-1]["heldout_psnr"] >= before + PSNR_GAIN


def test_release_holds_the_final_weights(trained, raw, tmp_path):
    clips = heldout_clips(str(raw[1]), _config(raw, trained).data, 4)[0]
    again = export_vae(trained / "checkpoints" / "step-000000015", tmp_path / "again", "bfloat16")
    with torch.no_grad():
        final = psnr(MUGVAE.from_pretrained(trained / "release")(clips, sample=False).recon, clips)
        bf16 = MUGVAE.from_pretrained(again, dtype=torch.float32)(clips, sample=False).recon
    assert float(final.mean()) == pytest.approx(read_metrics(trained)[-1]["heldout_psnr"], abs=1e-4)
    assert float(psnr(bf16, clips).mean()) == pytest.approx(float(final.mean()), abs=0.5)
    assert json.loads((again / "config.json").read_text())["config"]["temporal"]["filters"] == 8


def _without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("step_time", "clips_per_s", "peak_mem_gib")} for r in rows]  # fmt: skip


def test_resume_inside_the_gan_stage_is_exact(trained, raw, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    shutil.rmtree(run_dir / "checkpoints" / "step-000000015")
    shutil.rmtree(run_dir / "release")
    result = train_vae(_config(raw, run_dir, "checkpoint.every=13"), device="cpu")  # from 13
    assert result.step == 15
    assert _without_timing(read_metrics(run_dir)) == _without_timing(read_metrics(trained))
    a, b = (load_file(str(d / "release" / "model.safetensors")) for d in (trained, run_dir))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_ranks_split_the_heldout_evaluation_and_write_the_release(raw, tmp_path):
    cfg = _config(raw, tmp_path / "run", "stages.0.steps=1", "stages.1.steps=1", "data.batch_size=1")  # fmt: skip
    (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "mugv_train", "vae", "--config", str(tmp_path / "cfg.json"), "--device", "cpu"]  # fmt: skip
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_metrics(tmp_path / "run")
    assert [r["stage"] for r in rows] == [0, 1] and "disc" in rows[1]
    # Each rank scored 2 of the 4 held-out clips; the summed mean is the release's mean PSNR.
    clips = heldout_clips(str(raw[1]), cfg.data, 4)[0]
    with torch.no_grad():
        recon = MUGVAE.from_pretrained(tmp_path / "run" / "release")(clips, sample=False).recon
    assert float(psnr(recon, clips).mean()) == pytest.approx(rows[-1]["heldout_psnr"], abs=1e-4)


def test_clip_stream_is_split_by_rank_and_resumes(raw, tmp_path):
    cfg = _config(raw, tmp_path, "data.batch_size=3").data
    one = iter(ClipLoader(cfg, 0, 1))
    batches = [next(one) for _ in range(4)]  # 12 positions: one epoch
    keys = [b["keys"] for b in batches]
    assert sorted(k for ks in keys for k in ks) == sorted(
        c.key for c in index_clips(str(raw[0]), 9)
    )
    assert all(b["video"].shape == (3, 3, 9, 16, 16) and b["video"].abs().max() <= 1 for b in batches)  # fmt: skip
    ranks = [ClipLoader(cfg, r, 2) for r in range(2)]
    streams = [iter(r) for r in ranks]
    assert [next(s)["keys"] for s in streams] == keys[:2]  # rank r reads global batch 2·step + r
    resumed = ClipLoader(cfg, 0, 1)
    resumed.load_state_dict(ranks[0].state_dict())  # 2 ranks -> 1 rank after one step
    assert [b["keys"] for b in itertools.islice(resumed, 2)] == keys[2:]
    assert torch.equal(next(iter(ClipLoader(cfg, 0, 1)))["video"], batches[0]["video"])


def test_config_errors_name_the_field(raw, tmp_path):
    with pytest.raises(ConfigError, match=r"model\.lpips"):
        _config(raw, tmp_path, "loss.perceptual_weight=0.1")
    with pytest.raises(ConfigError, match="reshard_after_forward must be false"):
        _config(raw, tmp_path, "parallel.reshard_after_forward=true")
    with pytest.raises(ConfigError, match=r"stages\.1\.gamma"):
        _config(raw, tmp_path, "stages.1.gamma=0.1")
    with pytest.raises(ConfigError, match="at least 32 px"):
        _config(raw, tmp_path, "discriminator.n_layers=3")
    mugv = load_vae_config("vae-mugv")
    assert mugv.model.vae_config() == VAEConfig.preset("mugv") and mugv.model.freeze_spatial


def test_cli_failures_are_one_line(tmp_path, capsys):
    assert main(["vae", "--config", "no-such-preset"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vae-tiny" in err
    assert main(["vae", "--config", "vae-tiny", "--set", f"data.shards={json.dumps(str(tmp_path))}"]) == 2  # fmt: skip
    assert "no raw shards (*.tar) found" in capsys.readouterr().err
    assert main(["vae-export", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "meta.json" in capsys.readouterr().err
