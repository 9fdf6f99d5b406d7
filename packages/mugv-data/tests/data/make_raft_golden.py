"""Make `raft_golden.safetensors` (torchvision's own RAFT on the deterministic weights and frames
of `raft_utils.py`) and `raft_keys.json` (its state-dict keys and shapes), so that `test_raft.py`
checks our RAFT against torchvision without torchvision installed.

torchvision is no dependency of mugv-data; put a wheel matching the installed torch on the path
for this run only (its compiled ops need not load: RAFT uses none of them):
    pip install --no-deps --target /tmp/tv torchvision==0.28.0
    PYTHONPATH=/tmp/tv python packages/mugv-data/tests/data/make_raft_golden.py
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
# torchvision registers fake kernels for its compiled ops at import; skip that when they are absent.
sys.modules["torchvision._meta_registrations"] = types.ModuleType("_meta_registrations")
import raft_utils as ru  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models.optical_flow import raft_large, raft_small  # noqa: E402

from mugv_data.flow.raft import VARIANTS  # noqa: E402


def main() -> None:
    image1, image2 = ru.golden_frames()
    out, keys = {}, {}
    for name, build in (("raft_large", raft_large), ("raft_small", raft_small)):
        model = build().eval()
        keys[name] = {k: list(v.shape) for k, v in model.state_dict().items()}
        model.load_state_dict(ru.deterministic_state(VARIANTS[name]), strict=True)
        with torch.no_grad():
            flow = model(image1, image2, num_flow_updates=ru.GOLDEN_ITERS)[-1]
        out[name] = flow[:, :, :: ru.GOLDEN_STRIDE, :: ru.GOLDEN_STRIDE].contiguous()
        print(name, tuple(flow.shape), f"mean |flow| {flow.norm(dim=1).mean():.4f}")
    meta = {"torchvision": torchvision.__version__, "torch": torch.__version__}
    save_file(out, str(HERE / "raft_golden.safetensors"), metadata=meta)
    lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items()]
    for name, shapes in keys.items():
        rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in shapes.items())
        lines.append(f"{json.dumps(name)}: {{\n{rows}\n}}")
    (HERE / "raft_keys.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")


if __name__ == "__main__":
    main()
