"""The demo (`python3 dev.py demo`) end to end on its smaller `ci` preset: the same code path
(world -> curate -> VAE -> precompute -> curriculum -> SFT -> DPO -> mugv-infer -> tracker) must
learn, measured against the `ci` thresholds of docs/demo.md. Plus the judge's own parts: the
tracker on ground-truth clips and the binomial tail."""

import json
from math import comb

import pytest
import torch

from demo.config import PRESETS, WorldConfig
from demo.data import make_t5
from demo.report import checks
from demo.run import prompts, run
from demo.stats import Score, lower_bound, tail
from demo.tracker import track
from demo.train import calibrate
from demo.world import COLOURS, DIRECTIONS, HELD_OUT, clip_specs, render
from mugv_vae import MUGVAE, VAEConfig


def test_tracker_reads_every_ground_truth_clip():
    specs = clip_specs((8, 12), (17, 33), seeds=1)
    reads = [track(render(s, WorldConfig())) for s in specs]
    assert [(t.colour, t.direction) for t in reads] == [(s.colour, s.direction) for s in specs]


def test_tracker_sees_nothing_in_a_blank_clip():
    blank = render(clip_specs((8,), (17,), 1)[0], WorldConfig()) * 0 + 40
    assert track(blank).colour is None and track(blank).direction is None


def test_held_out_pairs_form_a_latin_square():
    assert len(HELD_OUT) == len(COLOURS) == len(DIRECTIONS)
    assert {c for c, _ in HELD_OUT} == set(COLOURS)
    assert {d for _, d in HELD_OUT} == set(DIRECTIONS)


def test_text_encoder_gives_each_world_word_its_own_token(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(make_t5(tmp_path / "t5"))
    ids = tok(["a Red square moving left", "a red disc moving up", "a red blob"]).input_ids
    assert ids[0][0] == ids[1][0] and ids[0][1] == ids[1][1]  # "a", "red" (lower-cased)
    assert len({ids[0][2], ids[1][2], ids[0][4], ids[1][4]}) == 4  # shapes and directions differ
    assert ids[2][2] == tok.unk_token_id and ids[0][-1] == tok.eos_token_id


@torch.no_grad()
def test_calibrated_vae_gives_unit_latents_and_the_same_round_trip(tmp_path):
    torch.manual_seed(0)
    vae = MUGVAE(VAEConfig.preset("tiny")).eval()
    vae.save_pretrained(tmp_path / "vae")
    clips = torch.rand(4, 3, 9, 16, 16) * 2 - 1
    cal = MUGVAE.from_pretrained(calibrate(tmp_path / "vae", clips, tmp_path / "cal")).eval()
    g = torch.Generator().manual_seed(0)  # calibrate's draws, replayed
    z = torch.cat([cal.encode(c[None], generator=g) for c in clips])
    dims = (0, 2, 3, 4)
    assert torch.allclose(z.mean(dims), torch.zeros(24), atol=1e-5)
    assert torch.allclose(z.std(dims), torch.ones(24), atol=1e-5)
    x = clips[:1]
    before = vae.decode(vae.encode(x, sample=False), 9)
    assert torch.allclose(cal.decode(cal.encode(x, sample=False), 9), before, atol=1e-5)


def test_binomial_tail_and_bound():
    assert tail(0, 10, 0.3) == pytest.approx(1.0)
    assert tail(3, 3, 0.5) == pytest.approx(0.125)
    assert tail(2, 4, 0.25) == pytest.approx(
        sum(comb(4, i) * 0.25**i * 0.75 ** (4 - i) for i in (2, 3, 4))
    )
    low = lower_bound(24, 32, alpha=0.01)
    assert tail(24, 32, low) == pytest.approx(
        0.01, rel=1e-6
    )  # the bound is where the tail hits alpha
    assert Score(24, 32, 0.25).p_value < 1e-8 and Score(8, 32, 0.25).p_value > 0.4


def _numbers(policy: float, reference: float) -> dict:
    score = Score(40, 48, 0.25).to_dict()
    loss = {"0": {"first": 1.0, "last": 0.5, "ratio": 0.5, "steps": 10}}
    return {
        "tracking": {
            k.rpartition(" ")[0]: {"colour": score, "direction": score}
            for k in PRESETS["full"].thresholds.accuracy
        },
        "vae_psnr": 21.0,
        "losses": {"pretrain": loss, "sft": loss, "dpo": {"0": loss["0"] | {"ratio": 5.0}}},
        "preference": {"train_policy": policy, "train_reference": reference},
    }


def test_dpo_is_judged_by_pair_accuracy_against_the_reference_not_its_loss():
    th = PRESETS["full"].thresholds
    rows = {r["check"]: r for r in checks(_numbers(0.95, 0.85), th)}
    assert all(r["ok"] for r in rows.values()) and not any("dpo/" in k for k in rows)
    margin = "DPO training-pair accuracy, policy - reference"
    assert rows[margin]["value"] == pytest.approx(0.10)
    failed = [r["check"] for r in checks(_numbers(0.90, 0.93), th) if not r["ok"]]
    assert failed == [margin]
    assert margin not in {
        r["check"] for r in checks(_numbers(0.90, 0.93), PRESETS["ci"].thresholds)
    }


def test_ci_demo_learns(tmp_path):
    cfg = PRESETS["ci"]
    numbers, checks = run(cfg, tmp_path / "demo")
    failed = [c for c in checks if not c["ok"]]
    assert not failed, json.dumps(failed, indent=1)
    # every held-out prompt was generated, saved and read back
    jobs = prompts(cfg)
    n = sum(len(group) for group in jobs.values())
    assert len(list((tmp_path / "demo" / "samples").glob("*.mp4"))) == len(numbers["samples"]) == n
    t2v = numbers["tracking"]["T2V, probe"]
    assert t2v["direction"]["total"] == len(jobs["t2v"]) and t2v["direction"]["chance"] == 0.25
    assert all(len(s["probe"]) == 2 for s in numbers["samples"])
    # the report names every number
    summary = (tmp_path / "demo" / "summary.md").read_text()
    assert "PASS" in summary and "dB" in summary and "lower bound" in summary
    assert {p.name for p in (tmp_path / "demo").glob("loss-*.png")} == {
        "loss-pretrain.png",
        "loss-sft.png",
        "loss-dpo.png",
    }
