import torch

from mugv_dit import attention as attn


def test_dispatch_equals_softmax_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5 if i == 0 else 7, 72, generator=g) for i in range(3))
    ref = torch.softmax(q @ k.transpose(-1, -2) / 72**0.5, dim=-1) @ v
    torch.testing.assert_close(attn.attention(q, k, v), ref, rtol=1e-5, atol=1e-5)


def test_sdpa_priority_puts_cudnn_first():
    assert attn.SDPA_PRIORITY[0] == torch.nn.attention.SDPBackend.CUDNN_ATTENTION
    assert attn.SDPA_PRIORITY[-1] == torch.nn.attention.SDPBackend.MATH


def test_fast_kernel_is_optional_and_can_be_forced_off(monkeypatch):
    attn.fast_kernel.cache_clear()
    monkeypatch.setenv("MUGV_ATTENTION", "sdpa")
    assert attn.fast_kernel() is None
    assert attn.attention_backend_name().startswith("sdpa")
    attn.fast_kernel.cache_clear()


def test_inference_only_kernel_is_not_used_for_training():
    fake = attn.FastKernel("fa4", lambda q, k, v: q, has_backward=False)
    q = torch.randn(1, 1, 2, 8, requires_grad=True)
    assert not attn._use_fast(q, fake)  # CPU tensors never take the CUDA kernel
