"""MUG-V VAE encode/decode throughput and peak memory, plus tiled-vs-untiled agreement.

    PYTHONPATH=packages/mugv-vae/src python benchmarks/vae_throughput.py --out $OUT
    # tiled-vs-untiled agreement only, on CPU (the figures in docs/vae.md):
    PYTHONPATH=packages/mugv-vae/src python benchmarks/vae_throughput.py --device cpu \
        --dtype float32 --check-only --check-size 9x256x256
    # CPU smoke test:
    PYTHONPATH=packages/mugv-vae/src python benchmarks/vae_throughput.py --device cpu \
        --preset tiny --dtype float32 --height 32 --width 48 --frames 9 --check-size 9x64x64 --check-tiles 32:8,48:16

Weights are random (default init) at the chosen preset: throughput and memory do not depend on
the weight values. Writes vae_throughput.json under --out and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mugv_vae import MUGVAE, TilingConfig, VAEConfig

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeats: int) -> tuple[float, float, object]:
    """Median seconds over `repeats` runs, peak bytes allocated during them, last result."""
    times, result = [], None
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(repeats):
        result = None
        _sync(device)
        start = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else float("nan")
    return statistics.median(times), peak, result


def _video(frames: int, height: int, width: int, device, dtype, seed: int = 0) -> torch.Tensor:
    """Smooth random video [1, 3, T, H, W] in [-1, 1] (low-frequency, like natural footage)."""
    gen = torch.Generator(device).manual_seed(seed)
    coarse = torch.rand(
        1, 3, frames // 4 + 2, height // 32 + 2, width // 32 + 2, generator=gen, device=device
    )
    video = torch.nn.functional.interpolate(coarse, size=(frames, height, width), mode="trilinear")
    return (video * 2 - 1).to(dtype)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def agreement(model: MUGVAE, size: tuple[int, int, int], tiles: list[tuple[int, int]], device):
    """Tiled vs untiled on a clip small enough for both: relative L2 and max abs errors."""
    frames, height, width = size
    x = _video(frames, height, width, device, next(model.parameters()).dtype, seed=1)
    rows = []
    with torch.inference_mode():
        z = model.encode(x, sample=False)
        recon = model.decode(z, frames)
        for tile, overlap in tiles:
            cfg = TilingConfig(enabled=True, tile_size=tile, tile_overlap=overlap, frame_batch=4)
            zt = model.encode(x, sample=False, tiling=cfg)
            rt = model.decode(z, frames, tiling=cfg)
            rows.append(
                {
                    "tile": tile,
                    "overlap": overlap,
                    "latent_rel_l2": _rel(zt, z),
                    "latent_max_abs": (zt - z).abs().max().item(),
                    "pixel_rel_l2": _rel(rt, recon),
                    "pixel_max_abs": (rt - recon).abs().max().item(),
                    "pixel_psnr_db": (
                        10 * torch.log10(4 / (rt.float() - recon.float()).pow(2).mean())
                    ).item(),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mugv")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--frames", type=int, default=105)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frame-batch", type=int, default=8)
    parser.add_argument("--check-size", default="17x256x256", help="TxHxW of the tiling check")
    parser.add_argument("--check-tiles", default="128:32,192:64", help="tile:overlap list")
    parser.add_argument("--check-only", action="store_true", help="skip throughput and memory")
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()

    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    torch.backends.cudnn.benchmark = True  # conv shapes repeat across frame batches and windows
    torch.manual_seed(0)
    with torch.device(device):
        model = MUGVAE(VAEConfig.preset(args.preset)).to(dtype).eval()
    result: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "preset": args.preset,
        "dtype": args.dtype,
        "clip": [args.frames, args.height, args.width],
        "weights_bytes": sum(p.numel() * p.element_size() for p in model.state_dict().values()),
    }
    gen = torch.Generator(device).manual_seed(0)
    runs = (
        {}
        if args.check_only
        else {
            "untiled": TilingConfig(frame_batch=args.frame_batch),
            "untiled_fb1": TilingConfig(frame_batch=1, chunk_batch=1),
            "tiled512": TilingConfig(
                enabled=True, tile_size=512, tile_overlap=128, frame_batch=args.frame_batch
            ),
        }
    )
    result["runs"] = {}
    with torch.inference_mode():
        if runs:
            x = _video(args.frames, args.height, args.width, device, dtype)
            model.encode(x[:, :, :9], tiling=runs["untiled"])  # warm-up (cuDNN autotune, kernels)
        for name, tiling in runs.items():
            enc_s, enc_peak, z = _timed(
                lambda t=tiling: model.encode(x, generator=gen, tiling=t), device, args.repeats
            )
            dec_s, dec_peak, recon = _timed(
                lambda t=tiling, z=z: model.decode(z, args.frames, tiling=t), device, args.repeats
            )
            assert recon.shape == x.shape and torch.isfinite(recon).all()
            result["runs"][name] = {
                "latent_shape": list(z.shape),
                "encode_s": enc_s,
                "encode_fps": args.frames / enc_s,
                "encode_peak_gib": enc_peak / 2**30,
                "decode_s": dec_s,
                "decode_fps": args.frames / dec_s,
                "decode_peak_gib": dec_peak / 2**30,
            }
            del z, recon
    check = tuple(int(v) for v in args.check_size.split("x"))
    tiles = [tuple(int(v) for v in pair.split(":")) for pair in args.check_tiles.split(",")]
    result["tiling_check"] = {"size": list(check), "rows": agreement(model, check, tiles, device)}
    if device.type == "cuda":
        model32 = model.float()
        result["tiling_check_fp32"] = agreement(model32, check, tiles, device)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vae_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if result["runs"]:
        print(f"\n{'run':10} {'enc fps':>8} {'enc GiB':>8} {'dec fps':>8} {'dec GiB':>8}")
    for name, r in result["runs"].items():
        print(
            f"{name:10} {r['encode_fps']:8.2f} {r['encode_peak_gib']:8.2f} "
            f"{r['decode_fps']:8.2f} {r['decode_peak_gib']:8.2f}"
        )


if __name__ == "__main__":
    main()
