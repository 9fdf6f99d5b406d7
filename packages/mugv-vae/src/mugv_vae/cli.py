"""mugv-vae command line: reconstruct a video and report PSNR/SSIM, or encode it to latents.

mugv-vae recon IN.mp4 OUT.mp4 --weights DIR          # our format (save_pretrained)
mugv-vae recon IN.mp4 OUT.mp4 --reference vae.pt     # the released MUG-V weights
mugv-vae encode IN.mp4 OUT.safetensors --weights DIR   # key `latent`, as in latent shards

Expected failures (a bad flag or value, a missing or unreadable video, a wrong checkpoint folder
or file, --device cuda without CUDA, a missing extra) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import torch
from safetensors.torch import save_file

from mugv_vae.cli_common import Parser, device_arg, one_line
from mugv_vae.config import TilingConfig
from mugv_vae.io import read_video, write_video
from mugv_vae.metrics import psnr, ssim
from mugv_vae.model import MUGVAE

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mugv-vae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("recon", "encode+decode, print PSNR/SSIM"), ("encode", "write latents")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("input", help="input video (mp4)")
        p.add_argument("output", help="output mp4 (recon) or safetensors (encode)")
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--weights", help="directory written by MUGVAE.save_pretrained")
        src.add_argument("--reference", help="released MUG-V vae.pt")
        p.add_argument("--max-frames", type=int, default=None, help="default: every frame")
        p.add_argument("--device", type=device_arg, default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")  # fmt: skip
        p.add_argument("--dtype", choices=sorted(_DTYPES), default="float32", help="model dtype")
        p.add_argument("--tile", action="store_true", help="spatial tiling (large frames)")
        p.add_argument("--seed", type=int, default=0, help="posterior sampling seed")
    return parser


def _load(args: argparse.Namespace) -> MUGVAE:
    if args.weights:
        model = MUGVAE.from_pretrained(args.weights)
    else:
        model = MUGVAE.from_reference(args.reference)
    model.tiling = TilingConfig(enabled=args.tile)
    return model.to(args.device, _DTYPES[args.dtype]).eval()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(_run(args))
    except (OSError, ValueError, ImportError) as err:  # missing or bad video/checkpoint, extra
        print(f"mugv-vae {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace) -> str:
    """Load video and model, encode (and decode), write the output; -> the line to report."""
    video, fps = read_video(args.input, args.max_frames)
    model = _load(args)
    x = video.unsqueeze(0).to(args.device)
    gen = torch.Generator(args.device).manual_seed(args.seed)
    num_frames, size = x.shape[2], (x.shape[3], x.shape[4])
    with torch.inference_mode():
        z = model.encode(x, generator=gen, progress=True)
        if args.command == "encode":
            meta = {"num_frames": num_frames, "height": size[0], "width": size[1], "fps": fps}
            tensors = {"latent": z[0].float().cpu().contiguous()}  # the latent shard's name
            save_file(tensors, args.output, metadata={k: json.dumps(v) for k, v in meta.items()})
            return f"latent {tuple(z.shape[1:])} -> {args.output}"
        recon = model.decode(z, num_frames, progress=True).float().cpu()
    write_video(args.output, recon[0], fps)
    # sides that are no multiple of 8 are floored by the VAE: score the pixels it reconstructs
    target = x[..., : recon.shape[-2], : recon.shape[-1]].float().cpu()
    p, s = psnr(recon, target).item(), ssim(recon, target).item()
    return f"PSNR {p:.2f} dB  SSIM {s:.4f}  ({num_frames} frames, {size[0]}x{size[1]})"


if __name__ == "__main__":
    sys.exit(main())
