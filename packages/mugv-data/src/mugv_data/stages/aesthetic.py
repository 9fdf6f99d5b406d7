"""Aesthetic score: a LAION-style MLP on L2-normalised CLIP image embeddings, kept >= `min`.

Both weights come from local paths (`aesthetic.clip_path`: a transformers
CLIPVisionModelWithProjection folder; `aesthetic.mlp_path`: the MLP head as .safetensors or
.pth with keys `layers.{0,2,4,6,7}.{weight,bias}`, as LAION's improved-aesthetic-predictor).
Without them the stage is disabled: clips get `aesthetic: null` and a warning says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mugv_data.config import AestheticConfig
from mugv_data.stages.base import Clip

log = logging.getLogger(__name__)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class AestheticMLP(nn.Module):
    """LAION improved-aesthetic-predictor head: dim -> 1024 -> 128 -> 64 -> 16 -> 1."""

    def __init__(self, dim: int = 768) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
        )  # fmt: skip

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """emb: [B, dim] L2-normalised -> [B]."""
        return self.layers(emb).squeeze(-1)


def load_mlp(path: str | Path) -> AestheticMLP:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if "layers.0.weight" not in state:
        raise ValueError(f"{path}: no 'layers.0.weight'; expected a LAION-style aesthetic MLP")
    mlp = AestheticMLP(state["layers.0.weight"].shape[1])
    mlp.load_state_dict(state)
    return mlp.eval()


def clip_preprocess(frames: list[np.ndarray], size: int) -> torch.Tensor:
    """RGB uint8 [H, W, 3] frames -> [B, 3, size, size]: resize short side, centre crop, CLIP norm."""
    out = []
    for f in frames:
        x = torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0
        h, w = x.shape[-2:]
        s = size / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
        top, left = (nh - size) // 2, (nw - size) // 2
        out.append(x[0, :, top : top + size, left : left + size].clamp(0, 1))
    x = torch.stack(out)
    return (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]


class AestheticStage:
    name = "aesthetic"

    def __init__(self, cfg: AestheticConfig) -> None:
        self.cfg = cfg
        self.enabled = bool(cfg.clip_path and cfg.mlp_path)
        if not self.enabled:
            log.warning(
                "aesthetic stage disabled: set aesthetic.clip_path and aesthetic.mlp_path to "
                "local CLIP and MLP weights to score and filter clips (scores recorded as null)"
            )
            return
        for p in (cfg.clip_path, cfg.mlp_path):
            if not Path(p).exists():
                raise FileNotFoundError(f"aesthetic weights {p} do not exist (local paths only)")
        from transformers import CLIPVisionModelWithProjection

        self.clip = CLIPVisionModelWithProjection.from_pretrained(
            cfg.clip_path, local_files_only=True
        ).eval()
        self.clip.to(cfg.device)
        self.mlp = load_mlp(cfg.mlp_path).to(cfg.device)
        self.size = self.clip.config.image_size

    @torch.inference_mode()
    def score(self, frames: list[np.ndarray]) -> np.ndarray:
        """RGB frames -> aesthetic score per frame, [len(frames)]."""
        scores = []
        for i in range(0, len(frames), self.cfg.batch_size):
            x = clip_preprocess(frames[i : i + self.cfg.batch_size], self.size).to(self.cfg.device)
            emb = self.clip(pixel_values=x).image_embeds
            scores.append(self.mlp(F.normalize(emb.float(), dim=-1)).cpu())
        return torch.cat(scores).numpy()

    def __call__(self, clips: list[Clip]) -> None:
        todo = [c for c in clips if c.reject is None]
        if not self.enabled:
            for c in todo:
                c.scores[self.name] = None
            return
        if not todo:
            return
        per_frame = self.score([k for c in todo for k in c.keyframes])
        i = 0
        for c in todo:
            score = float(per_frame[i : i + len(c.keyframes)].mean())
            i += len(c.keyframes)
            c.scores[self.name] = round(score, 4)
            if score < self.cfg.min:
                c.reject_as(self.name, "filtered_out", f"{score:.2f} < {self.cfg.min}")
