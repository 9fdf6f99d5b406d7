"""Raw shards (mugv-raw/1: mp4 + json) -> latent shards (mugv-latent/1): VAE posterior samples
and text-encoder features, the caption suffixed with its aesthetic score (SPEC §3).

Contract: raw shard `X.tar` becomes latent shard `X-000000.tar` (written atomically by
mugv-data), so a visible output shard is complete and is skipped on a re-run. Raw shards are
split over ranks (`i % world == rank`, torchrun or Slurm). Every sample that cannot be decoded or
encoded is listed with its reason in `precompute-failures.rank{R}.jsonl`, and each finished shard
gets a line in `precompute-journal.rank{R}.jsonl` (written, failed); nothing is dropped silently.
Rank 0 also writes `null_text.safetensors`, the encoding of the empty prompt, for caption dropout.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from mugv_data import LatentSample, LatentShardWriter
from mugv_data.dist import rank_world
from mugv_data.io.video import VideoError, read_frames
from mugv_data.loader.loader import resolve_shards
from mugv_data.shards.raw import RawFormatError, validate_raw_meta
from mugv_data.shards.tar import iter_tar_samples
from mugv_dit.text_encoder import T5TextEncoder, with_aesthetic
from mugv_vae import MUGVAE

log = logging.getLogger(__name__)
SIZE_MULTIPLE = 16  # VAE stride 8 x DiT patch 2: latent H and W stay even


@dataclass
class Encoders:
    vae: MUGVAE
    text: T5TextEncoder
    vae_id: str
    text_encoder_id: str
    device: torch.device
    dtype: torch.dtype = torch.float32


@dataclass
class Options:
    size: tuple[int, int] | None = None  # (width, height) to resize + centre-crop to
    max_frames: int | None = None
    images_per_clip: int = 0  # extra single-frame (text-to-image) samples per clip
    seed: int = 0


@dataclass
class Report:
    written: int = 0
    failed: list[dict] = field(default_factory=list)
    shards_done: int = 0
    shards_skipped: int = 0


def load_encoders(
    vae: str, text_encoder: str, device: str, dtype: torch.dtype, text_dtype: torch.dtype,
    vae_id: str | None = None, text_encoder_id: str | None = None,
) -> Encoders:  # fmt: skip
    """The VAE from a mugv release folder or the released vae.pt, T5 from a local folder."""
    model = MUGVAE.from_pretrained(vae) if Path(vae).is_dir() else MUGVAE.from_reference(vae)
    model = model.to(device=device, dtype=dtype).eval()
    text = T5TextEncoder(text_encoder, max_length=300, dtype=text_dtype, device=device)
    return Encoders(
        model, text,
        vae_id or Path(vae).name, text_encoder_id or Path(text_encoder).name,
        torch.device(device), dtype,
    )  # fmt: skip


def fit_frames(frames: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """[T, 3, H, W] float -> resized (short side first) and centre-cropped to `size` or to the
    largest multiple of 16 in each dimension."""
    h, w = frames.shape[-2:]
    if size is not None:
        tw, th = size
        s = max(th / h, tw / w)
        nh, nw = max(th, round(h * s)), max(tw, round(w * s))
        frames = F.interpolate(frames, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)  # fmt: skip
        h, w = nh, nw
    else:
        th, tw = h - h % SIZE_MULTIPLE, w - w % SIZE_MULTIPLE
        if th == 0 or tw == 0:
            raise ValueError(f"{w}x{h} px is smaller than {SIZE_MULTIPLE} px")
    top, left = (h - th) // 2, (w - tw) // 2
    return frames[..., top : top + th, left : left + tw]


def _pixels(mp4: bytes, opts: Options) -> torch.Tensor:
    """mp4 bytes -> [3, T, H, W] in [-1, 1]."""
    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(mp4)
        f.flush()
        frames = read_frames(f.name)
    if opts.max_frames:
        frames = frames[: opts.max_frames]
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    return (fit_frames(x, opts.size) / 127.5 - 1).clamp(-1, 1).permute(1, 0, 2, 3)


@torch.no_grad()
def _encode(
    enc: Encoders, key: str, pixels: torch.Tensor, meta: dict, g: torch.Generator
) -> LatentSample:
    caption = meta["caption"]
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(
            f"no caption ({caption!r}): curate with a captioner (caption.model_path) or give "
            "captions with the inputs"
        )
    score = (meta.get("scores") or {}).get("aesthetic")
    caption = with_aesthetic(caption, score) if score is not None else caption
    x = pixels[None].to(enc.device, enc.dtype)
    latent = enc.vae.encode(x, sample=True, generator=g)[0].float().cpu()
    text, mask = enc.text.encode([caption])
    n = int(mask[0].sum())
    return LatentSample(
        key=key, latent=latent, text=text[0, :n].float().cpu().to(torch.bfloat16),
        text_mask=mask[0, :n].cpu(), caption=caption, fps=float(meta["fps"]),
        height=pixels.shape[2], width=pixels.shape[3], num_frames=pixels.shape[1],
        vae_id=enc.vae_id, text_encoder_id=enc.text_encoder_id,
        tasks=["t2i"] if pixels.shape[1] == 1 else ["t2v", "i2v"],
        extra={"source": meta.get("source"), "raw_id": meta.get("id")},
    )  # fmt: skip


def _samples(enc: Encoders, key: str, pixels: torch.Tensor, meta: dict, opts: Options, g):
    yield _encode(enc, key, pixels, meta, g)
    frames = pixels.shape[1]
    for j in range(opts.images_per_clip):
        t = (2 * j + 1) * frames // (2 * opts.images_per_clip)
        yield _encode(enc, f"{key}_img{j}", pixels[:, t : t + 1], meta, g)


def _process_shard(enc: Encoders, shard: str, out: Path, opts: Options, report: Report) -> None:
    stem = Path(shard).name.removesuffix(".tar")
    failed: list[dict] = []
    g = torch.Generator(device=enc.device).manual_seed(opts.seed)
    written = 0
    with LatentShardWriter(out, prefix=stem, max_samples=1 << 30, max_bytes=1 << 62) as writer:
        samples = iter_tar_samples(shard)
        while True:
            try:
                key, files = next(samples)
            except StopIteration:
                break
            except (OSError, tarfile.TarError) as e:  # the rest of the shard is unreadable
                failed.append({"shard": shard, "key": None, "reason": f"shard unreadable after {written} samples: {e}"})  # fmt: skip
                break
            try:
                meta = json.loads(files.get("json", b"null"))
                if not isinstance(meta, dict) or "mp4" not in files:
                    raise RawFormatError(f"needs .mp4 and a json object, has {sorted(files)}")
                validate_raw_meta(meta, f"shard {Path(shard).name}: sample {key}")
                pixels = _pixels(files["mp4"], opts)
                for sample in _samples(enc, key, pixels, meta, opts, g):
                    writer.write(sample)
                    written += 1
            except (VideoError, ValueError, RuntimeError) as e:
                failed.append({"shard": shard, "key": key, "reason": f"{type(e).__name__}: {e}"})
    rank = rank_world()[0]
    for row in failed:  # failures first: the journal line is what marks the shard as done
        _append(out / f"precompute-failures.rank{rank:05d}.jsonl", row)
        log.warning("precompute: %s: %s", row["key"] or row["shard"], row["reason"])
    _append(out / f"precompute-journal.rank{rank:05d}.jsonl", {"shard": shard, "written": written, "failed": len(failed)})  # fmt: skip
    report.written += written
    report.failed += failed
    report.shards_done += 1


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _done(out: Path, shard: str) -> bool:
    stem = Path(shard).name.removesuffix(".tar")
    if (out / f"{stem}-000000.tar").exists():
        return True
    for journal in out.glob("precompute-journal.rank*.jsonl"):
        if any(json.loads(ln)["shard"] == shard for ln in journal.read_text().splitlines() if ln):
            return True
    return False


def precompute(
    raw: str | list[str], out: str | os.PathLike[str], enc: Encoders, opts: Options | None = None
) -> Report:
    """Encode this rank's raw shards into `out`; returns what was written, skipped, failed."""
    opts = opts or Options()
    rank, world = rank_world()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shards = resolve_shards(raw)
    mine = shards[rank::world]
    report = Report()
    if rank == 0 and not (out / "null_text.safetensors").exists():
        text, mask = enc.text.encode([""])
        null = text[0, : int(mask[0].sum())].float().cpu().contiguous()
        save_file({"text": null}, str(out / "null_text.safetensors"), metadata={"text_encoder_id": enc.text_encoder_id})  # fmt: skip
    for shard in tqdm(mine, desc=f"precompute rank {rank}", disable=rank != 0):
        if _done(out, shard):
            report.shards_skipped += 1
            continue
        _process_shard(enc, shard, out, opts, report)
    return report
