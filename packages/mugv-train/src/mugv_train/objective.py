"""The rectified-flow training objective of SPEC §4 on a loader batch: task mix, frame masks,
caption dropout, fixed text-length buckets, and the per-sample loss.

Every random draw (task, conditioning frame, caption dropout, t, noise) comes from one CPU
generator that the trainer seeds from (run seed, step, micro-batch, data-parallel rank): a step's
inputs are a pure function of those, so a resumed run repeats an uninterrupted one bit for bit
without saving any RNG state, and the draws do not depend on the device.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch
from safetensors.torch import load_file

from mugv_dit import DiTConfig
from mugv_dit.flops import num_tokens, train_step_flops
from mugv_train.config import ObjectiveConfig, TaskMix

TASKS = ("t2i", "t2v", "i2v", "random_frame")
VAE_STRIDE = 8  # pixels per latent along H and W (the shift ratio is defined in pixels)


@dataclass
class Prepared:
    """Model inputs and loss targets of one micro-batch (all on the target device)."""

    x: torch.Tensor  # [B, C, T, H, W] noisy latents, conditioning frames clean
    timestep: torch.Tensor  # [B] on the 0..1000 scale
    text: torch.Tensor  # [B, L_bucket, D]
    text_mask: torch.Tensor  # [B, L_bucket] bool
    fps: torch.Tensor  # [B]
    frame_mask: torch.Tensor  # [B, T] bool, True = generated
    target: torch.Tensor  # [B, C, T, H, W] velocity x0 - noise
    task: torch.Tensor  # [B] index into TASKS
    tokens: int  # sequence tokens of the batch (start/end included)
    model_flops: float  # forward + backward model FLOPs (no recompute)


def _load_null_text(path: str | None) -> torch.Tensor | None:
    if path is None:
        return None
    try:
        text = load_file(path)["text"]
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the null text embedding 'text' [L, D] ({e})") from e
    if text.ndim != 2:
        raise ValueError(f"{path}: 'text' must be [L, D], got {list(text.shape)}")
    return text


class Objective:
    def __init__(self, cfg: ObjectiveConfig, model_cfg: DiTConfig, text_buckets: tuple[int, ...]):
        self.cfg, self.model_cfg = cfg, model_cfg
        self.flow = cfg.flow
        self.buckets = sorted(text_buckets)
        # The null text stands for "no caption": precompute's encoding of the empty prompt when
        # given, else one all-zero token (after the text embedder's first LayerNorm a zero row is
        # a fixed, caption-free input).
        null = _load_null_text(cfg.null_text)
        self.null_text = null if null is not None else torch.zeros(1, model_cfg.text_dim)

    # -- inputs ---------------------------------------------------------------------------------
    def _tasks(self, batch: dict, mix: TaskMix, g: torch.Generator) -> torch.Tensor:
        frames = batch["latent"].shape[2]
        weights = torch.tensor([0.0, mix.t2v, mix.i2v, mix.random_frame])
        out = []
        for hints in batch["tasks"]:
            if frames == 1:
                out.append(0)
                continue
            w = weights.clone()
            if hints and not {"i2v", "ti2v"} & set(hints):
                w[2:] = 0  # the sample was not marked as usable for image conditioning
            if w.sum() <= 0:
                w[1] = 1.0
            out.append(int(torch.multinomial(w, 1, generator=g)))
        return torch.tensor(out)

    def _frame_mask(self, task: torch.Tensor, frames: int, g: torch.Generator) -> torch.Tensor:
        mask = torch.ones(len(task), frames, dtype=torch.bool)
        mask[task == TASKS.index("i2v"), 0] = False
        for i in (task == TASKS.index("random_frame")).nonzero().flatten().tolist():
            mask[i, int(torch.randint(frames, (1,), generator=g))] = False
        return mask

    def _text(self, batch: dict, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        text, mask = batch["text"].float(), batch["text_mask"]
        rows = [text[i, : int(m.sum())] for i, m in enumerate(mask)]
        drop = torch.rand(len(rows), generator=g) < self.cfg.caption_dropout
        rows = [self.null_text.to(r.dtype) if d else r for r, d in zip(rows, drop, strict=True)]
        longest = max(r.shape[0] for r in rows)
        i = bisect.bisect_left(self.buckets, longest)
        length = self.buckets[i] if i < len(self.buckets) else longest
        out = torch.zeros(len(rows), length, text.shape[2])
        out_mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for j, r in enumerate(rows):
            out[j, : r.shape[0]], out_mask[j, : r.shape[0]] = r, True
        return out, out_mask

    def prepare(
        self, batch: dict, mix: TaskMix, g: torch.Generator, device: torch.device
    ) -> Prepared:
        """A loader batch -> model inputs; draws in a fixed order from `g`."""
        x0 = batch["latent"].float()
        b, _, frames, height, width = x0.shape
        task = self._tasks(batch, mix, g)
        frame_mask = self._frame_mask(task, frames, g)
        text, text_mask = self._text(batch, g)
        ratio = self.flow.shift_ratio(height * VAE_STRIDE, width * VAE_STRIDE, frames)
        t = self.flow.sample_t(b, ratio, generator=g)
        noise = torch.randn(x0.shape, generator=g)
        keep = frame_mask[:, None, :, None, None]
        x = torch.where(keep, self.flow.add_noise(x0, noise, t), x0)
        real_text = text_mask.sum(1).tolist()
        tokens = num_tokens(self.model_cfg, frames, height, width)
        flops = sum(train_step_flops(self.model_cfg, frames, height, width, n) for n in real_text)
        return Prepared(
            x=x.to(device),
            timestep=self.flow.model_timestep(t).to(device),
            text=text.to(device),
            text_mask=text_mask,  # stays on the CPU: the model reads lengths from it
            fps=batch["fps"].float().to(device),
            frame_mask=frame_mask.to(device),
            target=self.flow.target(x0, noise).to(device),
            task=task,
            tokens=b * tokens,
            model_flops=flops,
        )

    # -- loss -----------------------------------------------------------------------------------
    def loss(self, model: torch.nn.Module, p: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted batch loss, per-sample losses [B] detached, on the CPU)."""
        pred = model(p.x, p.timestep, p.text, p.text_mask, p.fps, p.frame_mask)
        loss = self.flow.loss(pred, p.target, p.frame_mask)
        with torch.no_grad():
            per_sample = self.flow.per_sample_loss(pred, p.target, p.frame_mask)
        return loss, per_sample.float().cpu()
