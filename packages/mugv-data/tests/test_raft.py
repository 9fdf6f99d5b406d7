"""RAFT: torchvision's weight layout and outputs, the correlation lookup and upsampling by hand,
and the motion stage's RAFT path (weights errors, padding, end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import raft_utils as ru
import synth
import torch
from safetensors.torch import load_file, save_file

from mugv_data.config import MotionConfig, build_config
from mugv_data.curate import Curator, _decode_analysis, analyze_video
from mugv_data.flow.load import load_raft
from mugv_data.flow.raft import (
    RAFT,
    RAFT_LARGE,
    RAFT_SMALL,
    VARIANTS,
    bilinear_upsample,
    convex_upsample,
    coords_grid,
    correlation_pyramid,
    lookup,
)
from mugv_data.io.inputs import InputVideo
from mugv_data.stages.motion import MotionStage, RaftFlow, mean_flow_magnitude
from mugv_data.stages.probe import probe

DATA = Path(__file__).parent / "data"
# torchvision's published parameter counts (Raft_Large_Weights / Raft_Small_Weights meta)
NUM_PARAMS = {"raft_large": 5_257_536, "raft_small": 990_162}


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory) -> Path:
    """A randomly initialised raft_small saved as torchvision saves it (.pth of a state dict)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_small.pth"
    torch.save(RAFT(RAFT_SMALL).state_dict(), path)
    return path


def _constant_delta_model(spec, delta) -> RAFT:
    """A RAFT whose flow head ignores its input and predicts `delta` (x, y) every iteration."""
    model = RAFT(spec).eval()
    head = model.update_block.flow_head.conv2
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor(delta))
    return model


# -- torchvision layout and numbers --------------------------------------------------------------
@pytest.mark.parametrize("name", ["raft_large", "raft_small"])
def test_state_dict_keys_and_shapes_are_torchvisions(name):
    expected = json.loads((DATA / "raft_keys.json").read_text())[name]
    model = RAFT(VARIANTS[name])
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == expected
    assert list(model.state_dict()) == list(expected)  # same order too
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMS[name]


@pytest.mark.parametrize("name", ["raft_large", "raft_small"])
def test_outputs_match_torchvision_golden(name):
    model = RAFT(VARIANTS[name]).eval()
    model.load_state_dict(ru.deterministic_state(VARIANTS[name]), strict=True)
    image1, image2 = ru.golden_frames()
    with torch.no_grad():
        flow = model(image1, image2, ru.GOLDEN_ITERS)
    golden = load_file(str(DATA / "raft_golden.safetensors"))[name]
    s = ru.GOLDEN_STRIDE
    torch.testing.assert_close(flow[:, :, ::s, ::s], golden, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_checkpoints_load_strictly_and_the_variant_is_recognised(tmp_path, suffix):
    for spec in (RAFT_LARGE, RAFT_SMALL):
        state = ru.deterministic_state(spec)
        path = tmp_path / f"w{suffix}"
        if suffix == ".pth":
            torch.save(state, path)
        else:
            save_file(state, str(path))
        model = load_raft(path)
        assert model.spec == spec and not model.training
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k]), k


def test_checkpoint_without_batchnorm_counters_loads(tmp_path):
    sd = RAFT(RAFT_LARGE).state_dict()  # carries torch's version metadata, like a saved .pth
    for k in [k for k in sd if "num_batches" in k]:
        del sd[k]
    torch.save(sd, tmp_path / "ported.pth")
    assert load_raft(tmp_path / "ported.pth").spec == RAFT_LARGE


def test_wrong_checkpoints_are_refused_naming_file_and_key(tmp_path):
    state = ru.deterministic_state(RAFT_SMALL)
    bad_shape = {**state, "update_block.flow_head.conv2.bias": torch.zeros(3)}
    save_file(bad_shape, str(tmp_path / "shape.safetensors"))
    with pytest.raises(ValueError, match=r"shape\.safetensors.*raft_small.*conv2\.bias is \(3,\)"):
        load_raft(tmp_path / "shape.safetensors")
    missing = {k: v for k, v in state.items() if "flow_head" not in k}
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match=r"missing update_block\.flow_head"):
        load_raft(tmp_path / "missing.safetensors")
    save_file({"module.fnet.conv1.weight": torch.zeros(1)}, str(tmp_path / "orig.safetensors"))
    with pytest.raises(ValueError, match="princeton-vl/RAFT layout"):
        load_raft(tmp_path / "orig.safetensors")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")  # pickled code, not a state dict
    with pytest.raises(ValueError, match=r"module\.pth is not a readable checkpoint"):
        load_raft(tmp_path / "module.pth")


# -- correlation pyramid and lookup ----------------------------------------------------------
def test_lookup_finds_a_shifted_pattern_at_the_shift_channel():
    r, (dx, dy), (h, w) = 3, (2, 1), (8, 10)
    f1 = torch.eye(h * w).reshape(1, h * w, h, w)  # every pixel its own unit feature
    f2 = torch.roll(f1, (dy, dx), dims=(2, 3))  # f2 at p + (dx, dy) is f1 at p
    corr = lookup(correlation_pyramid(f1, f2, levels=2), coords_grid(1, h, w), r)
    assert corr.shape == (1, 2 * 49, h, w)
    # level 0: 1/sqrt(C) at channel (dx + r) * 7 + (dy + r) (the x offset is the slow index),
    # zero at the 48 other offsets, wherever p + (dx, dy) lies inside the frame
    expected = torch.zeros(49, h - dy, w - dx)
    expected[(dx + r) * 7 + (dy + r)] = (h * w) ** -0.5
    torch.testing.assert_close(corr[0, :49, : h - dy, : w - dx], expected)
    # samples beyond the frame are zero: from the last column, every dx = +r lookup is outside
    assert (corr[0, (2 * r) * 7 : (2 * r + 1) * 7, :, -1] == 0).all()


def test_pyramid_levels_average_2x2_blocks_and_lookup_interpolates():
    g = torch.Generator().manual_seed(1)
    f1, f2 = torch.randn(1, 4, 4, 6, generator=g), torch.randn(1, 4, 4, 6, generator=g)
    level0, level1 = correlation_pyramid(f1, f2, levels=2)
    brute = torch.einsum("cyx,cvu->yxvu", f1[0], f2[0]) / 2.0  # [y, x, v, u]
    assert torch.allclose(level0.reshape(4, 6, 4, 6), brute, atol=1e-6)
    blocks = brute.reshape(4, 6, 2, 2, 3, 2).mean(dim=(3, 5))
    assert torch.allclose(level1.reshape(4, 6, 2, 3), blocks, atol=1e-6)
    # half a pixel to the right at level 0 is the mean of the two integer lookups
    base = coords_grid(1, 4, 6)
    left = lookup([level0], base, 1)
    half = lookup([level0], base + torch.tensor([0.5, 0.0])[:, None, None], 1)
    right = lookup([level0], base + torch.tensor([1.0, 0.0])[:, None, None], 1)
    assert torch.allclose(half, (left + right) / 2, atol=1e-6)


# -- upsampling --------------------------------------------------------------------------------
def test_convex_upsampling_layout_and_convexity():
    g = torch.Generator().manual_seed(2)
    flow = torch.randn(1, 2, 3, 4, generator=g)
    centre = torch.full((1, 9, 8, 8, 3, 4), -1e4)
    centre[:, 4] = 0  # all weight on the cell itself -> nearest (block) upsampling
    up = convex_upsample(flow, centre.reshape(1, 576, 3, 4))
    assert up.shape == (1, 2, 24, 32)
    torch.testing.assert_close(up, 8 * flow.repeat_interleave(8, 2).repeat_interleave(8, 3))
    # neighbour order is row-major over the 3x3 window; mask rows 4-7 of a cell use the cell below
    rows = torch.full((1, 9, 8, 8, 3, 4), -1e4)
    rows[:, 4, :4], rows[:, 7, 4:] = 0, 0
    up = convex_upsample(flow, rows.reshape(1, 576, 3, 4))
    torch.testing.assert_close(up[0, :, 12:16, 8:16], 8 * flow[0, :, 2:3, 1:2].expand(-1, 4, 8))
    assert (up[0, :, 20:24] == 0).all()  # below the last row: zero padding
    # any weights: a convex combination stays within the neighbours' range (zeros at the edge)
    up = convex_upsample(flow, torch.randn(1, 576, 3, 4, generator=g))
    lo, hi = min(0.0, 8 * flow.min().item()), max(0.0, 8 * flow.max().item())
    assert lo - 1e-5 <= up.min().item() and up.max().item() <= hi + 1e-5
    constant = convex_upsample(torch.full((1, 2, 3, 4), 0.5), torch.randn(1, 576, 3, 4))
    torch.testing.assert_close(constant[:, :, 8:16, 8:24], torch.full((1, 2, 8, 16), 4.0))


def test_bilinear_upsampling_keeps_a_constant_flow():
    up = bilinear_upsample(torch.tensor([0.25, -1.0])[None, :, None, None].expand(2, 2, 3, 5))
    assert up.shape == (2, 2, 24, 40)
    torch.testing.assert_close(up[:, 0], torch.full((2, 24, 40), 2.0))
    torch.testing.assert_close(up[:, 1], torch.full((2, 24, 40), -8.0))


# -- iterations ---------------------------------------------------------------------------------
def test_each_iteration_adds_the_predicted_delta():
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3)) * 2 - 1
    small = _constant_delta_model(RAFT_SMALL, [0.25, -0.5])
    large = _constant_delta_model(RAFT_LARGE, [0.25, -0.5])
    with torch.no_grad():
        for n in (1, 3):
            expected = torch.tensor([2.0 * n, -4.0 * n])[:, None, None]  # 8x (1/8-scale) deltas
            torch.testing.assert_close(small(image, image, n)[0], expected.expand(2, 128, 128))
            inner = large(image, image, n)[0, :, 8:-8, 8:-8]  # convex: the edge cells see zeros
            torch.testing.assert_close(inner, expected.expand(2, 112, 112))


def test_iterations_refine_deterministically():
    torch.manual_seed(4)
    model = RAFT(RAFT_SMALL).eval()
    a = torch.rand(1, 3, 128, 136) * 2 - 1
    b = torch.roll(a, 4, dims=3)
    with torch.no_grad():
        one, two, two_again = model(a, b, 1), model(a, b, 2), model(a, b, 2)
    assert torch.equal(two, two_again)
    assert (one - two).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="multiples of 8"):
        model(a[..., :100], b[..., :100])


# -- the motion stage's RAFT path -------------------------------------------------------------
def test_raft_flow_pads_crops_and_reports_720p_pixels():
    flow = RaftFlow(_constant_delta_model(RAFT_SMALL, [0.3, -0.4]), iters=2)
    frames = np.zeros((4, 100, 130), np.uint8)  # padded to 128 x 136 for RAFT, cropped back
    out = flow(frames[:2], frames[1:3])
    assert out.shape == (2, 100, 130, 2)
    np.testing.assert_allclose(out[..., 0], 4.8, atol=1e-5)
    np.testing.assert_allclose(out[..., 1], -6.4, atol=1e-5)
    # |(4.8, -6.4)| = 8 px at a 100-px short side = 57.6 px at 720
    assert mean_flow_magnitude(frames, 3, flow) == pytest.approx(8.0 * 7.2, rel=1e-5)


def test_raft_needs_weights_in_config():
    io = ["input=in", "output=out"]
    with pytest.raises(ValueError, match=r"motion\.raft_weights"):
        build_config("default", [*io, "motion.method=raft"])
    with pytest.raises(ValueError, match=r"motion\.method"):
        build_config("default", [*io, "motion.method=farneback"])


def test_missing_or_corrupt_weights_name_the_file_and_the_field(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=rf"motion\.raft_weights: .*{missing}"):
        MotionStage(MotionConfig(method="raft", raft_weights=str(missing)))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=rf"motion\.raft_weights: {corrupt} is not a readable"):
        MotionStage(MotionConfig(method="raft", raft_weights=str(corrupt)))
    cut = tmp_path / "cut.safetensors"
    save_file(ru.deterministic_state(RAFT_SMALL), str(cut))
    cut.write_bytes(cut.read_bytes()[:5000])
    with pytest.raises(ValueError, match=rf"motion\.raft_weights: {cut} is not a readable"):
        MotionStage(MotionConfig(method="raft", raft_weights=str(cut)))


def test_curation_stops_on_bad_weights_before_any_input(tmp_path):
    (tmp_path / "in").mkdir()
    synth.write(tmp_path / "in" / "pan.mp4", synth.pan(synth.texture(1), 24, 3))
    cfg = build_config(
        "tiny",
        [f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}", "motion.method=raft",
         f"motion.raft_weights={tmp_path / 'absent.pth'}"],
    )  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"motion\.raft_weights: .*absent\.pth"):
        Curator(cfg).run()
    assert not (tmp_path / "out" / "config.json").exists()  # the folder was not claimed
    assert not list((tmp_path / "out" / "state").iterdir())  # nothing journaled


def test_motion_stage_scores_a_video_with_raft(tmp_path, small_weights):
    (tmp_path / "in").mkdir()
    path = synth.write(tmp_path / "in" / "pan.mp4", synth.pan(synth.texture(1), 24, 3))
    cfg = build_config(
        "tiny",
        [f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}", "motion.method=raft",
         f"motion.raft_weights={small_weights}", "motion.raft_iters=2", "motion.max=1e9"],
    )  # fmt: skip
    res = analyze_video(InputVideo(str(path)), cfg)
    assert len(res.clips) == 1 and not res.rejects
    score = res.clips[0].scores["motion"]
    assert np.isfinite(score) and score > 0
    # the recorded score is RAFT's flow on the clip's analysis frames, in 720-px units
    info, _ = probe(str(path), cfg.probe)
    (start, end), *_ = _decode_analysis(str(path), info, cfg)[0]
    grays = _decode_analysis(str(path), info, cfg)[2][start:end]
    flow = RaftFlow(load_raft(small_weights), iters=2)
    assert score == round(mean_flow_magnitude(grays, cfg.motion.num_pairs, flow), 3)
    # the weights are loaded once per process, not for every input
    assert MotionStage(cfg.motion).flow.model is MotionStage(cfg.motion).flow.model
