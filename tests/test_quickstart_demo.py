"""The quick-start job (`python3 dev.py demo`) end to end, shortened: it trains, samples and
writes a run folder whose checkpoint loads back."""

import json

import torch

from mugv_dit import MUGDiT
from mugv_dit.demo import DemoConfig, train


def test_demo_trains_samples_and_writes_a_run_folder(tmp_path):
    cfg = DemoConfig(steps=120, sample_steps=6, out=str(tmp_path / "run"))
    metrics = train(cfg)
    assert metrics["loss_last_50"] < 0.75 * metrics["loss_first_50"]
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["steps"] == 120
    assert json.loads((run / "metrics.json").read_text()) == metrics
    model = MUGDiT.from_pretrained(run / "checkpoint")
    assert model.config.hidden_size == 144
    assert not torch.all(model.final_layer.linear.weight == 0)  # it was trained
