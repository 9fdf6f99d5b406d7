"""Build the LPIPS weights file that `mugv_vae.LPIPS.from_file` reads.

    python packages/mugv-vae/tools/convert_lpips.py VGG16.pth LPIPS_VGG.pth OUT.safetensors

VGG16.pth: torchvision's ImageNet vgg16 state dict (vgg16-397923af.pth); LPIPS_VGG.pth: the
LPIPS v0.1 linear heads (lpips/weights/v0.1/vgg.pth). Both are read with weights_only=True.
"""

from __future__ import annotations

import sys

import torch
from safetensors.torch import save_file

from mugv_vae.perceptual import LPIPS


def main() -> None:
    vgg_path, lin_path, out = sys.argv[1:4]
    vgg = torch.load(vgg_path, map_location="cpu", weights_only=True)
    lin = torch.load(lin_path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in vgg.items() if k.startswith("features.")}
    state |= {f"lin{k}.weight": lin[f"lin{k}.model.1.weight"] for k in range(5)}
    model = LPIPS()
    model.load_state_dict(state, strict=True)  # validates names and shapes
    save_file({k: v.contiguous() for k, v in state.items()}, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
