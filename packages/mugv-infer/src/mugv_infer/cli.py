"""mugv-infer: generate videos with MUG-V, and refine them with the enhancer.

    mugv-infer generate --checkpoint MUG-V-inference --t5 t5-v1_1-xxl \\
        --prompt "a red car on a coast road" [--image ref.png] [--aspect 16:9] [--seconds 5] \\
        --out video.mp4
    mugv-infer enhance IN.mp4 OUT.mp4 --weights enhancer/ --prompt "..."
    mugv-infer convert-enhancer --dit enhancer/dit_i2v.safetensors \\
        --lora enhancer/pytorch_model.bin --wan Wan2.1-T2V-1.3B-Diffusers --out enhancer-mugv/
    python -m mugv_infer ...   (the same)

Expected failures (a bad flag or value, missing or wrong checkpoint files, bad sizes, --device
cuda without CUDA, a missing extra) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from mugv_infer.buckets import ASPECTS, LENGTHS, resolve_size
from mugv_vae.cli_common import Parser, device_arg, one_line

log = logging.getLogger("mugv_infer")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


DEFAULT_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mugv-infer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="T2V / I2V / TI2V to an mp4")
    gen.add_argument("--checkpoint", type=Path, help="folder with dit/ or dit.pt, vae/ or vae.pt")
    gen.add_argument("--dit", type=Path, help="DiT folder or dit.pt (overrides --checkpoint)")
    gen.add_argument("--vae", type=Path, help="VAE folder or vae.pt (overrides --checkpoint)")
    gen.add_argument("--t5", type=Path, help="T5 folder (default: CHECKPOINT/t5)")
    gen.add_argument("--prompt", default="", help="caption; may be empty with --image")
    gen.add_argument("--image", type=Path, help="reference image for I2V / TI2V")
    gen.add_argument("--aspect", default="16:9", choices=list(ASPECTS), help="height:width")
    gen.add_argument("--seconds", type=int, default=5, choices=sorted(LENGTHS), help="length")
    gen.add_argument("--height", type=int, help="free size (rounded to a multiple of 16)")
    gen.add_argument("--width", type=int, help="free size (rounded to a multiple of 16)")
    gen.add_argument("--frames", type=int, help="free frame count (rounded to 8k+1)")
    gen.add_argument("--steps", type=int, default=25, help="Euler sampling steps")
    gen.add_argument("--cfg-scale", type=float, default=4.0, help="classifier-free guidance")
    gen.add_argument("--seed", type=int, default=0, help="noise seed")
    gen.add_argument("--aesthetic-score", type=float, default=6.0, help="appended to the prompt")
    gen.add_argument("--device", type=device_arg, default=DEFAULT_DEVICE, help="torch device")
    gen.add_argument("--dtype", default="bf16", choices=list(DTYPES), help="DiT and VAE")
    gen.add_argument(
        "--text-dtype", default="fp32", choices=list(DTYPES), help="T5; bf16 saves 9.5 GB"
    )
    gen.add_argument("--text-length", type=int, default=300, help="T5 tokens")
    gen.add_argument("--offload", action="store_true", help="stream DiT blocks from host memory")
    gen.add_argument(
        "--vae-frame-batch", type=int, default=8, help="frames per 2D VAE call; 1 = least memory"
    )
    gen.add_argument("--out", type=Path, required=True, help="output .mp4")

    enh = sub.add_parser("enhance", help="refine a generated mp4 with the Wan2.1-based enhancer")
    enh.add_argument("input", type=Path, help="video to refine (mp4)")
    enh.add_argument("output", type=Path, help="refined video (.mp4)")
    enh.add_argument("--weights", type=Path, required=True, help="enhancer folder (docs/infer.md)")
    enh.add_argument("--prompt", default="High quality video, HD, clear, motion, cinema", help="caption")  # fmt: skip
    enh.add_argument("--sigma", type=float, default=0.3, help="noise level the refiner starts from")
    enh.add_argument("--cfg-scale", type=float, default=2.0, help="classifier-free guidance")
    enh.add_argument("--seed", type=int, default=0, help="noise seed")
    enh.add_argument("--device", type=device_arg, default=DEFAULT_DEVICE, help="torch device")
    enh.add_argument("--dtype", default="bf16", choices=list(DTYPES), help="enhancer dtype")

    conv = sub.add_parser("convert-enhancer", help="released enhancer files -> enhancer folder")
    conv.add_argument("--dit", type=Path, required=True, help="enhancer/dit_i2v.safetensors")
    conv.add_argument("--lora", type=Path, required=True, help="enhancer/pytorch_model.bin")
    conv.add_argument("--wan", type=Path, required=True, help="Wan2.1-T2V-1.3B-Diffusers folder")
    conv.add_argument("--out", type=Path, required=True, help="enhancer folder to write")
    return parser


def _generate(args: argparse.Namespace) -> Path:
    from mugv_infer.pipeline import VideoPipeline

    if args.checkpoint is None and (args.dit is None or args.vae is None or args.t5 is None):
        raise ValueError("give --checkpoint DIR, or all of --dit, --vae and --t5")
    if args.image is not None and not args.image.is_file():
        raise FileNotFoundError(f"--image {args.image}: no such file")
    if args.steps < 1 or args.vae_frame_batch < 1:
        raise ValueError("--steps and --vae-frame-batch must be at least 1")
    if args.out.suffix.lower() != ".mp4":
        raise ValueError(f"--out {args.out}: the output is H.264 in an .mp4 file; name it *.mp4")
    size = resolve_size(args.aspect, args.seconds, args.height, args.width, args.frames)
    for note in size.notes:
        log.warning("size adjusted: %s", note)
    pipe = VideoPipeline.from_pretrained(
        args.checkpoint,
        dit=args.dit,
        vae=args.vae,
        t5=args.t5,
        device=args.device,
        dtype=DTYPES[args.dtype],
        text_dtype=DTYPES[args.text_dtype],
        text_length=args.text_length,
        offload=args.offload,
        vae_frame_batch=args.vae_frame_batch,
    )
    log.info(
        "generating %dx%d (HxW), %d frames at %s fps, %d steps",
        size.height, size.width, size.num_frames, size.play_fps, args.steps,
    )  # fmt: skip
    result = pipe.generate(
        args.prompt,
        args.image,
        size,
        steps=args.steps,
        cfg_scale=args.cfg_scale,
        seed=args.seed,
        aesthetic_score=args.aesthetic_score,
        progress=True,
    )
    return result.save(args.out)


def _enhance(args: argparse.Namespace) -> Path:
    from mugv_infer.enhancer import Enhancer
    from mugv_infer.video import read_mp4, write_mp4

    if args.output.suffix.lower() != ".mp4":
        raise ValueError(f"{args.output}: the output is H.264 in an .mp4 file; name it *.mp4")
    video, fps = read_mp4(args.input)
    enhancer = Enhancer.from_pretrained(args.weights, device=args.device, dtype=DTYPES[args.dtype])
    refined = enhancer.enhance(
        video, args.prompt, sigma=args.sigma, cfg_scale=args.cfg_scale, seed=args.seed
    )
    return write_mp4(args.output, refined, fps)


def _convert(args: argparse.Namespace) -> Path:
    from mugv_infer.convert_enhancer import convert_released_enhancer

    return convert_released_enhancer(args.dit, args.lora, args.wan, args.out)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    commands = {"generate": _generate, "enhance": _enhance, "convert-enhancer": _convert}
    try:
        out = commands[args.command](args)
    except (OSError, ValueError, ImportError) as err:  # files, sizes, formats, a missing extra
        print(f"mugv-infer {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    print(out)
    return 0
