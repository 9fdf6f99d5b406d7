"""A real, tiny MUG-DiT training and sampling run on CPU: the quick-start job until the full
pipeline lands.

    python -m mugv_dit.demo [--steps 500] [--out runs/demo]

Data are synthetic latent videos of two "prompts": each prompt owns a smooth random pattern that
drifts left or right over time. The debug DiT learns them with the rectified-flow loss; sampling
with CFG must then produce, for each prompt, latents closer to that prompt's clip than to the other.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from safetensors.torch import save_file

from mugv_dit.config import DiTConfig
from mugv_dit.flow import FlowSchedule
from mugv_dit.model import MUGDiT
from mugv_dit.sampling import sample

log = logging.getLogger("mugv_dit.demo")


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = 500
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    latent_shape: tuple[int, int, int] = (3, 8, 8)  # T, H, W latents
    text_len: int = 8
    sample_steps: int = 25
    cfg_scale: float = 4.0
    out: str = "runs/demo"


class ToyVideos:
    """Two prompts, each a smooth pattern drifting by one latent pixel per frame, left or right."""

    def __init__(self, cfg: DemoConfig, text_dim: int, generator: torch.Generator) -> None:
        frames, h, w = cfg.latent_shape
        base = F.interpolate(
            torch.randn(2, 24, h // 2, w // 2, generator=generator), size=(h, w), mode="bilinear"
        )
        clips = [
            torch.stack([b.roll(d * i, dims=-1) for i in range(frames)], dim=1)
            for b, d in zip(base, (1, -1), strict=True)
        ]
        self.clips = torch.stack(clips)  # [2, 24, T, H, W]
        self.text = torch.randn(2, cfg.text_len, text_dim, generator=generator)
        self.text_mask = torch.arange(cfg.text_len)[None] < torch.tensor([[5], [7]])
        self.negative = torch.zeros(1, 1, text_dim)

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        labels = torch.randint(0, 2, (size,), generator=generator)
        x0 = self.clips[labels] + 0.05 * torch.randn(self.clips[labels].shape, generator=generator)
        return x0, self.text[labels], self.text_mask[labels]


def train(cfg: DemoConfig) -> dict[str, float]:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = MUGDiT(DiTConfig.preset("debug"))
    schedule = FlowSchedule()
    data = ToyVideos(cfg, model.config.text_dim, gen)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-10, weight_decay=0.0
    )
    frames, h, w = cfg.latent_shape
    ratio = schedule.shift_ratio(8 * h, 8 * w, frames)
    fps = torch.full((cfg.batch_size,), 30.0)
    losses = []
    start = time.perf_counter()
    for step in range(cfg.steps):
        x0, text, mask = data.batch(cfg.batch_size, gen)
        noise = torch.randn(x0.shape, generator=gen)
        t = schedule.sample_t(cfg.batch_size, ratio, generator=gen)
        # Each prompt is dropped 10% of the time for the CFG-unconditional (null) embedding.
        drop = torch.rand(cfg.batch_size, generator=gen) < 0.1
        text = torch.where(drop[:, None, None], data.negative.expand_as(text), text)
        mask = torch.where(drop[:, None], torch.arange(mask.shape[1]) < 1, mask)
        pred = model(schedule.add_noise(x0, noise, t), schedule.model_timestep(t), text, mask, fps)
        loss = schedule.loss(pred, schedule.target(x0, noise))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == cfg.steps - 1:
            log.info("step %4d  loss %.4f", step, loss.item())
    train_seconds = time.perf_counter() - start

    model.eval()
    noise = torch.randn((2, 24, *cfg.latent_shape), generator=gen)
    negative_mask = torch.ones(1, 1, dtype=torch.bool)
    z = sample(
        model,
        schedule,
        noise,
        data.text,
        data.text_mask,
        data.negative,
        negative_mask,
        torch.full((2,), 30.0),
        cfg_scale=cfg.cfg_scale,
        steps=cfg.sample_steps,
    )
    dist = torch.cdist(z.flatten(1), data.clips.flatten(1)) / z[0].numel() ** 0.5  # [sample, clip]
    out = Path(cfg.out)
    model.save_pretrained(out / "checkpoint")
    save_file(
        {"samples": z.contiguous(), "clips": data.clips.contiguous()}, out / "samples.safetensors"
    )
    metrics = {
        "loss_first_50": sum(losses[:50]) / len(losses[:50]),
        "loss_last_50": sum(losses[-50:]) / len(losses[-50:]),
        "train_seconds": train_seconds,
        "sample_rms_to_own_clip": [dist[0, 0].item(), dist[1, 1].item()],
        "sample_rms_to_other_clip": [dist[0, 1].item(), dist[1, 0].item()],
        "prompts_followed": bool((dist.argmin(dim=1) == torch.arange(2)).all()),
    }
    (out / "config.json").write_text(cfg.model_dump_json(indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, field in DemoConfig.model_fields.items():
        if field.annotation in (int, float, str):
            parser.add_argument(
                f"--{name.replace('_', '-')}", type=field.annotation, default=field.default
            )
    cfg = DemoConfig(**vars(parser.parse_args(argv)))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    metrics = train(cfg)
    print(json.dumps(metrics, indent=2))
    print(f"run folder: {cfg.out} (config.json, metrics.json, checkpoint/, samples.safetensors)")
    return 0 if metrics["prompts_followed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
