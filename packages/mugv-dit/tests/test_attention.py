from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from mugv_dit import attention as attn


def test_dispatch_equals_softmax_attention():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 5, 3, 72, generator=g)  # [B, N, H, D]
    k, v = (torch.randn(2, 7, 3, 72, generator=g) for _ in range(2))
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / 72**0.5
    ref = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(scores, dim=-1), v)
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


def test_fast_kernel_follows_the_gpu_generation(monkeypatch):
    found = []

    def fake_import(module):
        found.append(module)
        return SimpleNamespace(flash_attn_func=lambda q, k, v: q)

    monkeypatch.delenv("MUGV_ATTENTION", raising=False)
    monkeypatch.setattr(attn.importlib, "import_module", fake_import)
    monkeypatch.setattr(attn.torch.cuda, "is_available", lambda: True)
    for capability, expected in (((9, 0), "fa4"), ((10, 0), "fa4"), ((8, 0), None)):
        monkeypatch.setattr(attn.torch.cuda, "get_device_capability", lambda c=capability: c)
        attn.fast_kernel.cache_clear()
        kernel = attn.fast_kernel()
        assert (kernel.name if kernel else None) == expected
    attn.fast_kernel.cache_clear()


@pytest.mark.parametrize(
    ("is_cuda", "dtype", "kernel_name", "grad", "expected"),
    [
        (True, torch.bfloat16, "fa4", False, True),
        (True, torch.float16, "fa3", False, True),
        (True, torch.bfloat16, "fa4", True, False),  # training: FA4's backward is wrong at D=72
        (True, torch.float32, "fa4", False, False),  # FlashAttention has no fp32 kernel
        (False, torch.bfloat16, "fa4", False, False),
        (True, torch.bfloat16, "", False, False),  # none installed
    ],
)
def test_fast_kernel_serves_cuda_half_precision_inference_only(
    is_cuda, dtype, kernel_name, grad, expected
):
    q = SimpleNamespace(is_cuda=is_cuda, dtype=dtype, requires_grad=grad)  # a fake CUDA tensor
    assert attn._use_fast(q, kernel_name) is expected


def test_training_takes_sdpa_where_a_fast_kernel_is_installed(monkeypatch):
    """Inputs that need a gradient never reach the fast kernel; detached ones do."""
    fake = attn.FastKernel("fa4", lambda q, k, v: (q * 2, None))  # (out, lse) in some versions
    monkeypatch.setattr(attn, "fast_kernel", lambda: fake)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    q, k, v = (torch.randn(1, 4, 2, 8, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    with torch.nn.attention.sdpa_kernel(attn.SDPA_PRIORITY, set_priority=True):
        ref = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(
            1, 2
        )
    out = attn.attention(q, k, v)
    assert torch.equal(out, ref)
    out.float().sum().backward()
    assert q.grad is not None and k.grad is not None
    assert torch.equal(attn.attention(q.detach(), k.detach(), v.detach()), 2 * q.detach())


def test_kernel_choice_is_a_constant_under_compile(monkeypatch):
    """torch.compile runs the lookup once and bakes it in: no import traced, no graph break."""
    lookups = []
    monkeypatch.setattr(
        attn, "fast_kernel", lambda: lookups.append(1) or attn.FastKernel("fa4", lambda *a: a[0])
    )
    torch._dynamo.reset()
    fn = torch.compile(lambda x: x * len(attn._fast_kernel_name()), fullgraph=True, backend="eager")
    assert fn(torch.ones(2)).tolist() == [3.0, 3.0]
    assert lookups == [1]
    torch._dynamo.reset()


def _has_fa4() -> bool:
    attn.fast_kernel.cache_clear()
    return attn._fast_kernel_name() == "fa4"


# The two FA4 checks need a Hopper/Blackwell GPU with flash-attn-4; CI has neither, and they ran
# on an H100 (docs/performance.md, "FlashAttention-4 in training").
_NEEDS_FA4 = pytest.mark.skipif(
    not _has_fa4(), reason="needs a Hopper/Blackwell GPU with flash-attn-4 (mugv-dit[fa4])"
)


def _errors(fn_fast, q, k, v, grad_out):
    """Relative errors of (out, dq, dk, dv) in bf16 against fp32, for `fn_fast` and for cuDNN."""

    def run(fn, dtype):
        inputs = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
        out = fn(*inputs)
        out.backward(grad_out.to(dtype))
        return [out.float()] + [t.grad.float() for t in inputs]

    def sdpa(*t):
        with torch.nn.attention.sdpa_kernel(attn.SDPA_PRIORITY, set_priority=True):
            o = F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in t))
        return o.transpose(1, 2)

    def rel(x, e):
        return float((x - e).norm() / e.norm())

    exact, fast, cudnn = run(sdpa, torch.float32), run(fn_fast, torch.bfloat16), run(sdpa, torch.bfloat16)  # fmt: skip
    names = ("out", "dq", "dk", "dv")
    return {n: (rel(f, e), rel(c, e)) for n, e, f, c in zip(names, exact, fast, cudnn, strict=True)}


def _inputs(d: int = 72):
    g = torch.Generator(device="cuda").manual_seed(0)
    return [torch.randn(1, 2048, 4, d, device="cuda", generator=g) for _ in range(4)]


@_NEEDS_FA4
def test_fa4_inference_matches_sdpa():
    q, k, v, _ = _inputs()
    with torch.no_grad():
        assert attn._use_fast(q.bfloat16(), attn._fast_kernel_name())
        fast = attn.attention(*(t.bfloat16() for t in (q, k, v))).float()
        exact = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v))).transpose(
            1, 2
        )
    assert float((fast - exact).norm() / exact.norm()) < 1e-2


@_NEEDS_FA4
@pytest.mark.xfail(strict=True, reason="flash-attn-4 4.0.0b36: wrong dq at head_dim 72 (rel 1.3)")
def test_fa4_backward_matches_sdpa():
    """Guards the inference-only rule: when a flash-attn-4 release fixes its head_dim-72
    backward this starts passing (strict xfail fails), and training may take FA4 again."""
    for name, (err_fa4, err_cudnn) in _errors(attn._fast_attention, *_inputs()).items():
        assert err_fa4 < max(2 * err_cudnn, 1e-2), (name, err_fa4, err_cudnn)
