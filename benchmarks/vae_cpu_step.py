"""Seconds per training step of the tiny VAE on CPU for each 2D-stage frame batch
(docs/performance.md): MUGVAE "tiny", VAELoss (MSE + KL), AdamW, clipping, batch 2 of
9-frame 32 x 32 clips; the frame batches alternate so drift in the machine's load hits both.

    OMP_NUM_THREADS=2 python benchmarks/vae_cpu_step.py --frame-batch 8 64 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mugv_vae import MUGVAE, LossConfig, TilingConfig, VAEConfig, VAELoss


def step_seconds(frame_batch: int, steps: int, warmup: int = 3) -> float:
    torch.manual_seed(0)
    model = MUGVAE(VAEConfig.preset("tiny"), TilingConfig(frame_batch=frame_batch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loss = VAELoss(LossConfig(saliency_l1_weight=0.0, perceptual_weight=0.0))
    x = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        out = model(x, window_latents=1)
        optimizer.zero_grad(set_to_none=True)
        loss(out.recon, x, out.posterior)["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frame-batch", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for r in range(args.rounds):
        for fb in args.frame_batch:
            print(f"round {r}: frame_batch {fb}: {step_seconds(fb, args.steps):.3f} s/step")


if __name__ == "__main__":
    main()
