"""mugv-serve: load a MUG-V release once and serve generation over HTTP with a web page.

    mugv-serve --checkpoint MUG-V-inference --t5 t5-v1_1-xxl [--port 8000]
    MUGV_SERVE_API_KEY=secret mugv-serve --checkpoint ... --host 0.0.0.0

Binds 127.0.0.1 unless told otherwise; set an API key before binding anything else.
Expected failures (a bad flag or value, missing or wrong checkpoint files, --device cuda without
CUDA) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch
import uvicorn

from mugv_infer import VideoPipeline
from mugv_infer.cli import DEFAULT_DEVICE, Parser, device_arg, one_line
from mugv_serve.app import Limits, ServeSettings, create_app
from mugv_serve.runner import PipelineRunner

log = logging.getLogger("mugv_serve")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="mugv-serve", description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True, help="dit/ or dit.pt, vae/ or vae.pt")
    p.add_argument("--t5", type=Path, help="T5 folder (default: CHECKPOINT/t5)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=8000, help="port to bind")
    p.add_argument("--device", type=device_arg, default=DEFAULT_DEVICE, help="torch device")
    p.add_argument("--dtype", default="bf16", choices=list(DTYPES), help="DiT and VAE dtype")
    p.add_argument("--text-dtype", default="fp32", choices=list(DTYPES), help="bf16 saves 9.5 GB")
    p.add_argument("--text-length", type=int, default=300, help="T5 tokens")
    p.add_argument("--offload", action="store_true", help="stream DiT blocks from host memory")
    p.add_argument("--max-queue", type=int, default=8, help="waiting jobs before 503")
    p.add_argument("--result-ttl", type=float, default=3600.0, help="seconds results are kept")
    p.add_argument("--steps", type=int, default=25, help="default sampling steps")
    p.add_argument("--max-steps", type=int, default=50, help="most sampling steps a job may ask")
    p.add_argument("--workdir", type=Path, default=Path("mugv-serve-jobs"), help="job results")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    api_key = os.environ.get("MUGV_SERVE_API_KEY") or None
    if api_key is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s without MUGV_SERVE_API_KEY: anyone who can reach it can use the GPU", args.host)  # fmt: skip
    try:
        settings = ServeSettings(
            host=args.host,
            port=args.port,
            api_key=api_key,
            max_queue=args.max_queue,
            result_ttl_s=args.result_ttl,
            default_steps=args.steps,
            workdir=args.workdir,
            limits=Limits(max_steps=args.max_steps),
        )
        pipe = VideoPipeline.from_pretrained(
            args.checkpoint,
            t5=args.t5,
            device=args.device,
            dtype=DTYPES[args.dtype],
            text_dtype=DTYPES[args.text_dtype],
            text_length=args.text_length,
            offload=args.offload,
        )
    except (OSError, ValueError) as err:  # settings, checkpoint files and formats
        print(f"mugv-serve: error: {one_line(err)}", file=sys.stderr)
        return 2
    info = {"weights": [w.model_dump() for w in pipe.weights], "device": str(pipe.device)}
    app = create_app(settings, PipelineRunner(pipe), info)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
