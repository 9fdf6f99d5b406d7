"""MUG-DiT: the video diffusion transformer of MUG-V (architecture only)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn

from mugv_dit.block import DiTBlock, FinalLayer
from mugv_dit.checkpoint import PretrainedMixin
from mugv_dit.config import DiTConfig
from mugv_dit.layers import PatchEmbed3D, RMSNorm, ScalarEmbedder, TextEmbedder, TokenSplit
from mugv_dit.rope import check_rope_range, rope_cos_sin, token_positions
from mugv_dit.validation import check_inputs, check_text_lengths


class ContextParallelPlan(NamedTuple):
    """Context-parallel structure as data: module names, no communication."""

    split: str  # module whose outputs are cut into sequence shards, one per rank
    split_dims: tuple[int, ...]  # the sequence dim of each of those outputs
    attention: str  # glob of the attention kernels that see all tokens via all-to-all
    gather: str  # module whose output is reassembled from the shards
    gather_dim: int


class MUGDiT(PretrainedMixin, nn.Module):
    """Text/image-to-video DiT with adaLN-single, QK-norm, 3D RoPE and start/end tokens.

    Use `MUGDiT(DiTConfig.preset("10b"))`, `MUGDiT.from_pretrained(dir)` or
    `MUGDiT.from_reference("dit.pt")`. Build on `torch.device("meta")` for large presets and
    call `init_weights()` (or load a state dict) after materialising.
    """

    # Parallel structure as data: submodules that are FSDP / activation-checkpoint units.
    fsdp_units: tuple[str, ...] = ("blocks",)
    # Where context parallelism cuts and reassembles the sequence (mugv_dit.context_parallel).
    cp_plan = ContextParallelPlan(
        split="token_split",
        split_dims=(1, 1, 0, 0),  # x [B, N, C], gen [B, N, 1], cos and sin [N, 1, D/2]
        attention="blocks.*.attn.kernel",
        gather="final_layer",
        gather_dim=1,  # head output [B, N, patch_volume * out_channels]
    )

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.x_embedder = PatchEmbed3D(config.patch_size, config.in_channels, d)
        self.t_embedder = ScalarEmbedder(d, config.freq_dim)
        self.fps_embedder = ScalarEmbedder(d, config.freq_dim)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.y_embedder = TextEmbedder(config.text_dim, d, config.norm_eps)
        self.blocks = nn.ModuleList(
            DiTBlock(d, config.num_heads, config.mlp_ratio, config.norm_eps)
            for _ in range(config.depth)
        )
        self.token_split = TokenSplit()
        self.start_token = nn.Parameter(torch.empty(d))
        self.end_token = nn.Parameter(torch.empty(d))
        self.final_layer = FinalLayer(
            d, math.prod(config.patch_size), config.out_channels, config.norm_eps
        )
        if self.start_token.device.type != "meta":
            self.init_weights()

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Initialise every parameter per `config.init` (docs/dit.md, "Initialisation").

        Both schemes: block linears N(0, init_std), block output projections (attn.proj,
        cross_attn.proj, mlp.fc2) N(0, init_std / sqrt(2 * depth)), block biases 0, norm weights
        1, start/end tokens N(0, 0.02), modulation tables randn / sqrt(d).
        "released" (MUG-V's Megatron training code): the linears outside the blocks (patch
        embedding, timestep/fps/text embedder MLPs, t_block, final linear) keep PyTorch's default,
        weights and biases U(±1/sqrt(fan_in)). "zero_head": those are N(0, init_std) with zero
        biases too, and the final linear is zero, so a fresh model predicts zero velocity.
        """
        cfg = self.config
        residual_std = cfg.init_std / math.sqrt(2 * cfg.depth)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear | nn.Conv3d):
                if cfg.init == "released" and not name.startswith("blocks."):
                    bound = 1 / math.sqrt(module.weight[0].numel())  # PyTorch's default
                    module.weight.uniform_(-bound, bound, generator=generator)
                    module.bias.uniform_(-bound, bound, generator=generator)
                    continue
                is_out = name.endswith(("attn.proj", "cross_attn.proj", "mlp.fc2"))
                std = residual_std if is_out else cfg.init_std
                module.weight.normal_(0.0, std, generator=generator)
                module.bias.zero_()
            elif isinstance(module, nn.LayerNorm) and module.weight is not None:
                module.weight.fill_(1.0)
                module.bias.zero_()
            elif isinstance(module, RMSNorm):
                module.weight.fill_(1.0)
        if cfg.init == "zero_head":
            self.final_layer.linear.weight.zero_()
        for token in (self.start_token, self.end_token):
            token.normal_(0.0, 0.02, generator=generator)
        for name, p in self.named_parameters():
            if name.endswith("scale_shift_table"):
                p.normal_(generator=generator).div_(math.sqrt(cfg.hidden_size))

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        fps: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the velocity x0 - noise.

        x: [B, C, T, H, W] latents; timestep: [B] in 0..1000; text: [B, L, text_dim];
        text_mask: [B, L] bool (True = real token), on x's device or on the CPU (then reading the
        text lengths does not wait for the GPU); fps: [B]; frame_mask: [B, T] bool,
        True = generate (noisy), False = conditioning frame (clean, modulated with t = 0).
        None means every frame is generated. Returns [B, C, T, H, W] in fp32.
        """
        cfg = self.config
        check_inputs(cfg, x, timestep, text, text_mask, fps, frame_mask)
        dtype = self.x_embedder.proj.weight.dtype
        b, _, frames, height, width = x.shape
        grid = [
            math.ceil(n / p) for n, p in zip((frames, height, width), cfg.patch_size, strict=True)
        ]
        check_rope_range(*grid, cfg.rope_space_positions, cfg.rope_time_positions)
        if frame_mask is None:
            frame_mask = torch.ones(b, frames, dtype=torch.bool, device=x.device)

        # 1. patchify and bracket with the start/end tokens
        tokens = self.x_embedder(x.to(dtype))
        x_seq = torch.cat(
            [self.start_token.expand(b, 1, -1), tokens, self.end_token.expand(b, 1, -1)], dim=1
        )

        # 2. conditioning: c for the timestep, c0 for t = 0 (conditioning frames, start/end)
        fps_emb = self.fps_embedder(fps)
        c = self.t_embedder(timestep.to(dtype)) + fps_emb
        c0 = self.t_embedder(torch.zeros_like(timestep, dtype=dtype)) + fps_emb
        cond, cond0 = self.t_block(c), self.t_block(c0)

        # 3. text: embed, then drop padding (cross-attention is per-sample variable length)
        text_lens = text_mask.sum(dim=1).tolist()  # waits for the GPU if the mask lives there
        check_text_lengths(text_lens)
        text_mask = text_mask.to(x.device, non_blocking=True)
        text_emb = self.y_embedder(text.to(dtype))
        # A full mask (fixed-length text) skips boolean indexing, which would wait for the GPU.
        full = min(text_lens) == text.shape[1]
        text_tokens = text_emb.flatten(0, 1) if full else text_emb[text_mask]

        # 4. per-token tensors: which tokens are generated (modulated with t), 3D RoPE tables
        gen = _generated_tokens(frame_mask[:, :: cfg.patch_size[0]], grid[1] * grid[2])
        cos, sin = rope_cos_sin(
            token_positions(*grid, device=x.device), cfg.head_dim, cfg.rope_theta
        )
        x_seq, gen, cos, sin = self.token_split(x_seq, gen, cos[:, None], sin[:, None])

        # 5. transformer blocks
        for block in self.blocks:
            x_seq = block(x_seq, text_tokens, text_lens, cond, cond0, gen, (cos, sin))

        # 6. head, drop start/end tokens, unpatchify, crop the patch padding, keep the velocity
        out = self.final_layer(x_seq, c, c0, gen)[:, 1:-1]
        pt, ph, pw = cfg.patch_size
        out = rearrange(
            out,
            "b (t h w) (pt ph pw c) -> b c (t pt) (h ph) (w pw)",
            t=grid[0],
            h=grid[1],
            w=grid[2],
            pt=pt,
            ph=ph,
            pw=pw,
        )
        return out[:, : cfg.in_channels, :frames, :height, :width].float()


def _generated_tokens(frame_gen: torch.Tensor, patches_per_frame: int) -> torch.Tensor:
    """frame_gen [B, T'] bool -> [B, 1 + T'*patches_per_frame + 1, 1]; start/end are False."""
    closed = frame_gen.new_zeros(frame_gen.shape[0], 1)
    body = frame_gen[:, :, None].expand(-1, -1, patches_per_frame).flatten(1)
    return torch.cat([closed, body, closed], dim=1)[..., None]
