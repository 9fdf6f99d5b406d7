import itertools
import math

import pytest
import torch

from mugv_dit.flow import FlowSchedule


@pytest.fixture
def fs():
    return FlowSchedule()


def test_shift_ratio_matches_paper(fs):
    assert fs.shift_ratio(720, 1280, 14) == pytest.approx(7.0156, abs=1e-3)  # 720p, 5 s
    assert fs.shift_ratio(512, 512, 1) == 1.0  # images at the base resolution: no shift
    assert fs.shift_ratio(1024, 1024, 1) == pytest.approx(2.0)


def test_shift_formula_values(fs):
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    torch.testing.assert_close(fs.shift(t, 3.0), torch.tensor([0.0, 0.5, 0.75, 1.0]))
    torch.testing.assert_close(fs.shift(t, 1.0), t)


def test_training_t_is_logit_normal_then_shifted(fs):
    g = torch.Generator().manual_seed(0)
    t = fs.sample_t(200_000, 1.0, generator=g)
    logits = torch.log(t / (1 - t))
    assert abs(logits.mean().item()) < 0.01 and abs(logits.std().item() - 1) < 0.01
    shifted = fs.sample_t(200_000, 7.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(shifted, fs.shift(t, 7.0))
    assert shifted.median() > 0.85  # large/long inputs are trained mostly at high noise


def test_noising_and_target(fs):
    x0, noise = torch.full((2, 3), 2.0), torch.full((2, 3), -1.0)
    xt = fs.add_noise(x0, noise, torch.tensor([0.0, 0.25]))
    torch.testing.assert_close(xt, torch.tensor([[2.0] * 3, [1.25] * 3]))
    torch.testing.assert_close(fs.target(x0, noise), torch.full((2, 3), 3.0))


def test_loss_ignores_conditioning_frames(fs):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 4, 3, 2, 2, generator=g), torch.randn(2, 4, 3, 2, 2, generator=g)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    base = fs.loss(pred, target, mask)
    pred2 = pred.clone()
    pred2[0, :, 0] += 100.0  # the conditioning frame of sample 0
    torch.testing.assert_close(fs.loss(pred2, target, mask), base)
    pred2.requires_grad_(True)
    fs.loss(pred2, target, mask).backward()
    assert torch.all(pred2.grad[0, :, 0] == 0) and torch.any(pred2.grad[0, :, 1] != 0)
    expected = ((pred[0, :, 1:] - target[0, :, 1:]) ** 2).mean() / 2 + (
        (pred[1] - target[1]) ** 2
    ).mean() / 2
    torch.testing.assert_close(base, expected)


def test_image_batches_weigh_0_3(fs):
    pred, target = torch.ones(2, 4, 1, 2, 2), torch.zeros(2, 4, 1, 2, 2)
    assert fs.loss(pred, target).item() == pytest.approx(0.3)
    assert fs.loss(torch.ones(2, 4, 2, 2, 2), torch.zeros(2, 4, 2, 2, 2)).item() == pytest.approx(
        1.0
    )


def test_sampling_grid(fs):
    grid = fs.timesteps(fs.shift_ratio(720, 1280, 14))
    assert grid.shape == (26,)
    assert grid[0] == 1.0 and grid[-1] == 0.0
    assert torch.all(grid[1:] < grid[:-1])
    assert grid[1].item() == pytest.approx(7.0156 * 0.96 / (1 + 6.0156 * 0.96), abs=1e-4)


def test_euler_step_reaches_x0_for_exact_velocity(fs):
    x0, noise = torch.randn(3), torch.randn(3)
    x = noise.clone()
    grid = fs.timesteps(2.0, steps=7).tolist()
    for t, t_next in itertools.pairwise(grid):
        x = fs.step(x, fs.target(x0, noise), t, t_next)
    torch.testing.assert_close(x, x0)
    assert math.isclose(sum(a - b for a, b in itertools.pairwise(grid)), 1.0)
