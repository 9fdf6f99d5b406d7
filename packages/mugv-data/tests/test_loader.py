"""The training loader: buckets, budgets, determinism, exact resume, corrupt samples."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from latent_utils import VAE, write_dataset

from mugv_data.loader.buckets import BatchPlan, batch_cost, tokens_of
from mugv_data.loader.loader import LatentLoader, LoaderConfig
from mugv_data.shards.latent import LatentFormatError
from mugv_data.shards.tar import load_index

N = 60


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    d = tmp_path_factory.mktemp("latents")
    write_dataset(d, n=N)
    return d


def _cfg(shards, **kw):
    base = dict(shards=str(shards), max_tokens=2000, num_workers=0, seed=3, balance_group=4)
    return LoaderConfig(**(base | kw))


def _take(loader, steps):
    return [b for b in itertools.islice(iter(loader), steps)]


def test_batches_are_bucketed_and_within_the_token_budget(shards):
    loader = LatentLoader(_cfg(shards), rank=0, world=1)
    for b in _take(loader, 12):
        B, C, T, H, W = b["latent"].shape
        assert C == 24 and B * tokens_of((T, H, W), (1, 2, 2)) <= 2000
        assert b["text"].shape == (B, b["text_mask"].sum(1).max(), 4096)
        assert b["is_image"] == (T == 1)


def test_an_epoch_sees_every_sample_exactly_once_and_is_seeded(shards):
    plan = LatentLoader(_cfg(shards), 0, 1).plan
    n = plan.streams["all"].batches_per_epoch
    ids = np.concatenate([plan.batch(g)[1] for g in range(n)])
    assert sorted(ids) == list(range(N))
    nxt = np.concatenate([plan.batch(g)[1] for g in range(n, 2 * n)])
    assert sorted(nxt) == list(range(N)) and not np.array_equal(ids, nxt)  # reshuffled per epoch
    again = LatentLoader(_cfg(shards), 0, 1).plan
    assert all(np.array_equal(plan.batch(g)[1], again.batch(g)[1]) for g in range(2 * n))


def _keys(batches):
    return [k for b in batches for k in b["keys"]]


def test_resume_after_restart_is_exact(shards):
    full = _keys(_take(LatentLoader(_cfg(shards, num_workers=2), 0, 1), 10))
    first = LatentLoader(_cfg(shards, num_workers=2), 0, 1)
    head = _keys(_take(first, 4))
    state = first.state_dict()
    second = LatentLoader(_cfg(shards, num_workers=2), 0, 1)
    second.load_state_dict(state)
    assert head + _keys(_take(second, 6)) == full


def test_resume_with_another_world_size_repeats_and_skips_nothing(shards):
    def run(world, steps, state=None):
        loaders = [LatentLoader(_cfg(shards), r, world) for r in range(world)]
        for ld in loaders:
            if state:
                ld.load_state_dict(state)
        got = [_keys(_take(ld, steps)) for ld in loaders]
        return [k for keys in got for k in keys], loaders[0].state_dict()

    before, state = run(2, 5)  # 10 batches consumed by 2 ranks
    after, _ = run(3, 4, state)  # 12 more by 3 ranks
    single, _ = run(1, 22)
    assert sorted(before + after) == sorted(single)
    assert Counter(before + after) == Counter(single)


def test_image_ratio_interleaves_runs(shards):
    loader = LatentLoader(_cfg(shards, image_ratio=0.5, balance_group=4), 0, 1)
    kinds = [loader.plan.locate(g)[0] for g in range(40)]
    assert kinds.count("image") == 20 and kinds[:8] == ["video"] * 4 + ["image"] * 4
    batches = _take(loader, 8)
    assert [b["is_image"] for b in batches] == [False] * 4 + [True] * 4
    quarter = LatentLoader(_cfg(shards, image_ratio=0.25, balance_group=4), 0, 1).plan
    assert [quarter.locate(g)[0] for g in range(160)].count("image") == 40


def _step_spread(plan, shapes, world, steps, crossover):
    spreads = []
    for s in range(steps):
        costs = []
        for r in range(world):
            ids = plan.batch(s * world + r)[1]
            costs.append(
                batch_cost(len(ids), tokens_of(tuple(shapes[ids[0]]), (1, 2, 2)), crossover)
            )
        spreads.append(max(costs) / min(costs))
    return float(np.mean(spreads))


def test_batches_of_one_step_cost_about_the_same():
    rng = np.random.default_rng(0)
    buckets = np.array([(14, 90, 160), (10, 60, 104), (6, 45, 80), (1, 128, 128)])
    shapes = buckets[rng.integers(0, 4, 4000)]
    kw = dict(max_tokens=60000, crossover=20736, seed=1)
    balanced = BatchPlan(shapes, shapes[:, 0] == 1, balance_group=32, **kw)
    naive = BatchPlan(shapes, shapes[:, 0] == 1, balance_group=1, **kw)
    b, n = _step_spread(balanced, shapes, 8, 40, 20736), _step_spread(naive, shapes, 8, 40, 20736)
    assert b < 0.8 * n, (b, n)


def test_corrupt_samples_are_skipped_and_counted(tmp_path):
    write_dataset(tmp_path, n=12, per_shard=12)
    (shard,) = tmp_path.glob("*.tar")
    data = bytearray(shard.read_bytes())
    entry = load_index(shard)[4]
    off, _ = entry["files"]["safetensors"]
    data[off : off + 8] = b"\x00" * 8
    shard.write_bytes(bytes(data))
    loader = LatentLoader(_cfg(tmp_path), 0, 1)
    n = loader.plan.streams["all"].batches_per_epoch
    batches = _take(loader, n)
    assert sum(len(b["keys"]) for b in batches) == 11 and loader.skipped == 1
    assert loader.state_dict()["skipped"] == 1


def test_mismatched_encoder_and_changed_dataset_are_refused(shards, tmp_path):
    with pytest.raises(LatentFormatError, match="field 'vae_id'"):
        LatentLoader(_cfg(shards, vae_id="another-vae"), 0, 1)
    LatentLoader(_cfg(shards, vae_id=VAE), 0, 1)
    state = LatentLoader(_cfg(shards), 0, 1).state_dict()
    with pytest.raises(ValueError, match="does not match"):
        LatentLoader(_cfg(shards, seed=4), 0, 1).load_state_dict(state)
    assert torch.is_tensor(_take(LatentLoader(_cfg(shards), 0, 1), 1)[0]["fps"])
