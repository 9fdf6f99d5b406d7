"""RAFT optical flow (Teed & Deng, 2020, arXiv 2003.12039) in plain PyTorch: architecture only.

Parameter names and shapes follow torchvision's `raft_large` / `raft_small`, so their published
state dicts load strictly (`mugv_data.flow.load`). The model:
    1. a feature encoder maps both frames to 1/8-resolution features (instance norm);
    2. the all-pairs correlation of those features is pooled into a 4-level pyramid;
    3. a context encoder on frame 1 gives the GRU's initial hidden state and its context;
    4. each iteration looks up the pyramid around the current estimate (radius r, all levels),
       encodes it with the flow, updates the ConvGRU and adds the predicted flow delta;
    5. the 1/8 flow is upsampled 8x, by a learned convex 3x3 combination (large) or bilinearly.
Inputs are RGB in [-1, 1] with H and W multiples of 8 (at least 128 so the coarsest
correlation level keeps 2 cells per side); flow is in pixels of the input, (x, y).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RAFTSpec:
    """Hyper-parameters of one RAFT variant (values of torchvision's builders)."""

    block: Literal["residual", "bottleneck"]  # two 3x3 convs, or 1x1, 3x3, 1x1
    feature_layers: tuple[int, ...]  # stem, layer1, layer2, layer3, output channels
    context_layers: tuple[int, ...]
    context_norm: Literal["batch"] | None  # the feature encoder always uses instance norm
    corr_levels: int
    corr_radius: int
    motion_corr_layers: tuple[int, ...]
    motion_flow_layers: tuple[int, int]
    motion_out: int
    hidden: int
    gru_kernels: tuple[tuple[int, int], ...]  # one ConvGRU per kernel, applied in order
    head_hidden: int
    convex_upsampling: bool


RAFT_LARGE = RAFTSpec(
    block="residual", feature_layers=(64, 64, 96, 128, 256), context_layers=(64, 64, 96, 128, 256),
    context_norm="batch", corr_levels=4, corr_radius=4, motion_corr_layers=(256, 192),
    motion_flow_layers=(128, 64), motion_out=128, hidden=128, gru_kernels=((1, 5), (5, 1)),
    head_hidden=256, convex_upsampling=True,
)  # fmt: skip
RAFT_SMALL = RAFTSpec(
    block="bottleneck", feature_layers=(32, 32, 64, 96, 128), context_layers=(32, 32, 64, 96, 160),
    context_norm=None, corr_levels=4, corr_radius=3, motion_corr_layers=(96,),
    motion_flow_layers=(64, 32), motion_out=82, hidden=96, gru_kernels=((3, 3),),
    head_hidden=128, convex_upsampling=False,
)  # fmt: skip
VARIANTS = {"raft_large": RAFT_LARGE, "raft_small": RAFT_SMALL}


def _conv(
    cin: int, cout: int, k: int, stride: int = 1, norm: str | None = None, relu: bool = True
) -> nn.Sequential:
    """conv -> [norm] -> [ReLU] as a Sequential, so keys read `.0.weight`, `.1.running_mean`."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2)]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(cout))
    elif norm == "instance":
        layers.append(nn.InstanceNorm2d(cout))
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str | None, stride: int) -> None:
        super().__init__()
        self.convnormrelu1 = _conv(cin, cout, 3, stride, norm)
        self.convnormrelu2 = _conv(cout, cout, 3, 1, norm)
        self.downsample = nn.Identity() if stride == 1 else _conv(cin, cout, 1, stride, norm, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.downsample(x) + self.convnormrelu2(self.convnormrelu1(x)))


class BottleneckBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str | None, stride: int) -> None:
        super().__init__()
        self.convnormrelu1 = _conv(cin, cout // 4, 1, 1, norm)
        self.convnormrelu2 = _conv(cout // 4, cout // 4, 3, stride, norm)
        self.convnormrelu3 = _conv(cout // 4, cout, 1, 1, norm)
        self.downsample = nn.Identity() if stride == 1 else _conv(cin, cout, 1, stride, norm, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convnormrelu3(self.convnormrelu2(self.convnormrelu1(x)))
        return F.relu(self.downsample(x) + y)


class Encoder(nn.Module):
    """[B, 3, H, W] -> [B, layers[4], H/8, W/8]: 7x7 stem (stride 2), three stages of two
    blocks (strides 1, 2, 2), 1x1 projection."""

    def __init__(self, block: str, layers: tuple[int, ...], norm: str | None) -> None:
        super().__init__()
        cls = ResidualBlock if block == "residual" else BottleneckBlock

        def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(cls(cin, cout, norm, stride), cls(cout, cout, norm, 1))

        self.convnormrelu = _conv(3, layers[0], 7, 2, norm)
        self.layer1 = stage(layers[0], layers[1], 1)
        self.layer2 = stage(layers[1], layers[2], 2)
        self.layer3 = stage(layers[2], layers[3], 2)
        self.conv = nn.Conv2d(layers[3], layers[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convnormrelu(x)
        return self.conv(self.layer3(self.layer2(self.layer1(x))))


class MotionEncoder(nn.Module):
    """(flow [B, 2, h, w], correlation [B, Ccorr, h, w]) -> [B, out, h, w] (flow appended)."""

    def __init__(
        self,
        corr_channels: int,
        corr_layers: tuple[int, ...],
        flow_layers: tuple[int, int],
        out: int,
    ) -> None:
        super().__init__()
        self.convcorr1 = _conv(corr_channels, corr_layers[0], 1)
        two = len(corr_layers) == 2
        self.convcorr2 = _conv(corr_layers[0], corr_layers[1], 3) if two else nn.Identity()
        self.convflow1 = _conv(2, flow_layers[0], 7)
        self.convflow2 = _conv(flow_layers[0], flow_layers[1], 3)
        self.conv = _conv(corr_layers[-1] + flow_layers[1], out - 2, 3)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        c = self.convcorr2(self.convcorr1(corr))
        f = self.convflow2(self.convflow1(flow))
        return torch.cat([self.conv(torch.cat([c, f], dim=1)), flow], dim=1)


class ConvGRU(nn.Module):
    def __init__(self, cin: int, hidden: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        pad = (kernel[0] // 2, kernel[1] // 2)
        self.convz = nn.Conv2d(hidden + cin, hidden, kernel, padding=pad)
        self.convr = nn.Conv2d(hidden + cin, hidden, kernel, padding=pad)
        self.convq = nn.Conv2d(hidden + cin, hidden, kernel, padding=pad)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z, r = torch.sigmoid(self.convz(hx)), torch.sigmoid(self.convr(hx))
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


class RecurrentBlock(nn.Module):
    """ConvGRUs applied in sequence (large: a 1x5 then a 5x1 one; small: one 3x3)."""

    def __init__(self, cin: int, hidden: int, kernels: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        for i, k in enumerate(kernels, start=1):
            setattr(self, f"convgru{i}", ConvGRU(cin, hidden, k))
        self.grus = len(kernels)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.grus + 1):
            h = getattr(self, f"convgru{i}")(h, x)
        return h


class FlowHead(nn.Module):
    def __init__(self, hidden: int, head_hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(hidden, head_hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(head_hidden, 2, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(h)))


class UpdateBlock(nn.Module):
    def __init__(self, spec: RAFTSpec) -> None:
        super().__init__()
        corr_channels = spec.corr_levels * (2 * spec.corr_radius + 1) ** 2
        self.motion_encoder = MotionEncoder(
            corr_channels, spec.motion_corr_layers, spec.motion_flow_layers, spec.motion_out
        )
        gru_in = spec.motion_out + spec.context_layers[-1] - spec.hidden  # motion + context
        self.recurrent_block = RecurrentBlock(gru_in, spec.hidden, spec.gru_kernels)
        self.flow_head = FlowHead(spec.hidden, spec.head_hidden)

    def forward(
        self, h: torch.Tensor, context: torch.Tensor, corr: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden state, context, correlation features, current flow (all [B, *, h, w]) ->
        (new hidden state [B, hidden, h, w], flow delta [B, 2, h, w])."""
        x = torch.cat([context, self.motion_encoder(flow, corr)], dim=1)
        h = self.recurrent_block(h, x)
        return h, self.flow_head(h)


class MaskPredictor(nn.Module):
    """Hidden state -> [B, 9*8*8, h, w] logits of the convex upsampling weights. The 0.25 scale
    is part of the trained model (the original code uses it to damp this branch's gradients)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.convrelu = _conv(hidden, 256, 3)
        self.conv = nn.Conv2d(256, 9 * 8 * 8, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return 0.25 * self.conv(self.convrelu(h))


def coords_grid(b: int, h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """[B, 2, h, w] pixel coordinates, channel 0 = x (column), channel 1 = y (row)."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
    )
    return torch.stack([xs, ys]).float()[None].expand(b, -1, -1, -1)


def correlation_pyramid(f1: torch.Tensor, f2: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """f1, f2: [B, C, h, w] -> `levels` volumes [B*h*w, 1, h/2^l, w/2^l]: for every pixel of
    frame 1, its dot product with every pixel of frame 2 over sqrt(C), 2x2-average pooled l
    times over the frame-2 axes."""
    b, c, h, w = f1.shape
    corr = torch.einsum("bcp,bcq->bpq", f1.flatten(2), f2.flatten(2)) / c**0.5
    pyramid = [corr.reshape(b * h * w, 1, h, w)]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))
    return pyramid


def lookup(pyramid: list[torch.Tensor], coords: torch.Tensor, radius: int) -> torch.Tensor:
    """coords: [B, 2, h, w] frame-2 positions (x, y) at level 0 -> [B, L*(2r+1)^2, h, w].

    At level l, the (2r+1)^2 correlations around coords/2^l are sampled bilinearly (zero outside).
    Channels run level by level; within a level the x offset is the slow index and the y offset
    the fast one (index = (dx + r) * (2r+1) + (dy + r)), the order trained weights expect.
    """
    b, _, h, w = coords.shape
    d = torch.arange(-radius, radius + 1, dtype=coords.dtype, device=coords.device)
    # offsets[i, j] = (d[i], d[j]) as (x, y): grid_sample's row axis (i) is the slow channel axis
    offsets = torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1)  # [2r+1, 2r+1, 2]
    centres = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
    out = []
    for level, corr in enumerate(pyramid):
        xy = centres / 2**level + offsets  # [B*h*w, 2r+1, 2r+1, 2] absolute pixels
        size = torch.tensor([corr.shape[-1], corr.shape[-2]], dtype=xy.dtype, device=xy.device)
        grid = 2 * xy / (size - 1) - 1  # align_corners=True: -1 and 1 are the edge pixel centres
        sampled = F.grid_sample(corr, grid, mode="bilinear", align_corners=True)
        out.append(sampled.reshape(b, h, w, -1))
    return torch.cat(out, dim=-1).permute(0, 3, 1, 2)


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """flow: [B, 2, h, w] at 1/8, mask: [B, 9*8*8, h, w] logits -> [B, 2, 8h, 8w] in input pixels.

    Each output pixel is a convex combination (softmax weights) of the 3x3 coarse neighbours of
    its cell; mask channels are ordered (neighbour, row in cell, column in cell).
    """
    b, _, h, w = flow.shape
    weights = torch.softmax(mask.view(b, 1, 9, 8, 8, h, w), dim=2)
    neighbours = F.unfold(8 * flow, 3, padding=1).view(b, 2, 9, 1, 1, h, w)
    up = (weights * neighbours).sum(dim=2)  # [B, 2, 8, 8, h, w]
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, 2, 8 * h, 8 * w)


def bilinear_upsample(flow: torch.Tensor) -> torch.Tensor:
    """[B, 2, h, w] at 1/8 -> [B, 2, 8h, 8w] in input pixels (raft_small has no mask head)."""
    h, w = flow.shape[-2:]
    return 8 * F.interpolate(flow, size=(8 * h, 8 * w), mode="bilinear", align_corners=True)


class RAFT(nn.Module):
    def __init__(self, spec: RAFTSpec = RAFT_LARGE) -> None:
        super().__init__()
        self.spec = spec
        self.feature_encoder = Encoder(spec.block, spec.feature_layers, "instance")
        self.context_encoder = Encoder(spec.block, spec.context_layers, spec.context_norm)
        self.update_block = UpdateBlock(spec)
        if spec.convex_upsampling:
            self.mask_predictor = MaskPredictor(spec.hidden)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, iters: int = 12) -> torch.Tensor:
        """image1, image2: [B, 3, H, W] in [-1, 1] (H, W multiples of 8, >= 128) -> flow from
        image1 to image2 [B, 2, H, W] in pixels, (x, y), after `iters` refinements."""
        b, _, h, w = image1.shape
        if h % 8 or w % 8 or min(h, w) < 128:
            raise ValueError(f"RAFT input {h}x{w}: height and width must be multiples of 8, >= 128")
        # 1. features of both frames, and their correlation pyramid
        f1, f2 = self.feature_encoder(torch.cat([image1, image2])).chunk(2)
        pyramid = correlation_pyramid(f1, f2, self.spec.corr_levels)
        # 2. context of frame 1: initial hidden state and the per-iteration context
        hidden, context = self.context_encoder(image1).split(
            [self.spec.hidden, self.spec.context_layers[-1] - self.spec.hidden], dim=1
        )
        hidden, context = torch.tanh(hidden), F.relu(context)
        # 3. iterative refinement of the 1/8 flow, starting from zero
        coords0 = coords_grid(b, h // 8, w // 8, image1.device)
        coords1 = coords0
        for _ in range(iters):
            corr = lookup(pyramid, coords1, self.spec.corr_radius)
            hidden, delta = self.update_block(hidden, context, corr, coords1 - coords0)
            coords1 = coords1 + delta
        # 4. upsample to the input size
        if self.spec.convex_upsampling:
            return convex_upsample(coords1 - coords0, self.mask_predictor(hidden))
        return bilinear_upsample(coords1 - coords0)
