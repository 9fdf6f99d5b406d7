import pytest

from mugv_dit import DiTConfig
from mugv_dit.flops import forward_flops, num_tokens, train_step_flops


def test_720p_5s_sample_of_the_10b_model():
    cfg = DiTConfig.preset("10b")
    assert num_tokens(cfg, 14, 90, 160) == 50_402
    assert train_step_flops(cfg, 14, 90, 160, text_len=300) == pytest.approx(8.8e15, rel=0.01)


def test_self_attention_is_quadratic_and_text_uses_real_length():
    cfg = DiTConfig.preset("debug")
    short, long = forward_flops(cfg, 1, 2, 2, 10), forward_flops(cfg, 1, 2, 2, 20)
    d, s = cfg.hidden_size, num_tokens(cfg, 1, 2, 2)
    per_text_token = cfg.depth * (2 * 2 * d * d + 4 * s * d) + 2 * (cfg.text_dim * d + d * d)
    assert long - short == pytest.approx(10 * per_text_token)
    f1, f2 = forward_flops(cfg, 1, 64, 64, 0), forward_flops(cfg, 2, 64, 64, 0)
    assert f2 / f1 > 2.0  # doubling the tokens more than doubles the cost


def test_backward_is_twice_forward():
    cfg = DiTConfig.preset("2b")
    assert train_step_flops(cfg, 4, 45, 80, 120) == 3 * forward_flops(cfg, 4, 45, 80, 120)
