"""Hostile inputs and interrupted runs: every input accounted for, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from conftest import tiny_config

from mugv_data.cli import main as cli_main
from mugv_data.curate import Curator
from mugv_data.loader.loader import LatentLoader, LoaderConfig
from mugv_data.shards.raw import iter_raw_shard
from mugv_data.shards.tar import INDEX_SUFFIX, ShardReadError
from mugv_data.validate import inspect_shard, validate_dir


def _records(out: Path, rank: int = 0) -> list[dict]:
    return [json.loads(x) for x in (out / f"state/journal-r{rank:05d}.jsonl").read_text().splitlines()]  # fmt: skip


def _keys(out: Path) -> list[str]:
    return [s.key for p in sorted((out / "shards").glob("*.tar")) for s in iter_raw_shard(p)]


@pytest.fixture
def two_videos(video_dir, tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for name in ("cut.mp4", "fade.mp4"):
        shutil.copy(video_dir / name, d / name)
    return d


def test_odd_names_and_extensions_are_probed_and_accounted(video_dir, tmp_path):
    d = tmp_path / "odd"
    d.mkdir()
    raw = os.fsencode(d) + b"/clip-\xff\xfe.mp4"  # not UTF-8
    shutil.copy(video_dir / "cut.mp4", raw)
    shutil.copy(video_dir / "fade.mp4", d / "movie.ogv")  # decided by probing, not extension
    shutil.copy(video_dir / "cut.mp4", d / "no_extension")
    (d / "notes.txt").write_text("not a video\n")
    m = Curator(tiny_config(d, tmp_path / "out", "dedup.enabled=false")).run()
    assert m["inputs"] == m["inputs_done"] == 4 and m["clips_accepted"] == 6
    recs = {os.fsencode(r["path"]): r for r in _records(tmp_path / "out")}
    assert recs[raw]["status"] == "accepted"  # the journal path gives back the exact bytes
    assert recs[os.fsencode(d / "notes.txt")]["rejects"][0]["reason"] == "corrupt"
    assert validate_dir(tmp_path / "out")[1] == []


def test_kill_after_shard_rename_is_reconciled_on_resume(two_videos, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cfg = tiny_config(two_videos, out, "output_format.max_clips_per_shard=1")

    def killed(self, path, keys):  # SIGKILL right after the rename: no journal line written
        raise SystemExit(9)

    monkeypatch.setattr(Curator, "_on_commit", killed)
    with pytest.raises(SystemExit):
        Curator(cfg).run()
    assert len(list((out / "shards").glob("*.tar"))) == 1 and not (out / "state/journal-r00000.jsonl").exists()  # fmt: skip
    monkeypatch.undo()
    m = Curator(cfg).run()
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == m["clips_accepted"] == 4
    assert validate_dir(out)[1] == []


def test_validate_fails_on_duplicates_and_manifest_mismatch(two_videos, tmp_path):
    out = tmp_path / "out"
    Curator(tiny_config(two_videos, out)).run()
    (shard,) = (out / "shards").glob("*.tar")
    shutil.copy(shard, shard.with_name("raw-r00000-000001.tar"))
    problems = validate_dir(out)[1]
    assert any("again in raw-r00000-000001.tar" in p for p in problems)
    assert any("not in the manifest" in p for p in problems)
    shard.with_name("raw-r00000-000001.tar").unlink()
    manifest = out / "manifest-r00000.json"
    m = json.loads(manifest.read_text())
    m["shards"][shard.name] += 1
    manifest.write_text(json.dumps(m))
    assert any("in the manifest" in p for p in validate_dir(out)[1])


def test_partial_journal_line_is_dropped_and_redone(two_videos, tmp_path):
    out = tmp_path / "out"
    cfg = tiny_config(two_videos, out)
    Curator(cfg).run()
    journal = out / "state/journal-r00000.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text(lines[0] + lines[1][:20])  # killed while writing the 2nd line
    (out / "shards/raw-r00000-000000.tar").unlink()
    (out / "shards/raw-r00000-000000.tar.idx.json").unlink()
    m = Curator(cfg).run()
    assert m["inputs_done"] == 2 and len(_records(out)) == 2


def test_multi_rank_resume_makes_the_same_decisions(video_dir, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in ("a.mp4", "b.mp4"):  # the same video on two ranks: ranks do not dedup each other
        shutil.copy(video_dir / "cut.mp4", d / name)
    full = [
        Curator(tiny_config(d, tmp_path / "full"), r, 2).run()["clips_accepted"] for r in (0, 1)
    ]
    out = tmp_path / "resumed"
    Curator(tiny_config(d, out), 0, 2).run()
    Curator(tiny_config(d, out), 1, 2).run()
    (out / "state/journal-r00001.jsonl").unlink()  # rank 1 lost its progress
    for p in (out / "shards").glob("raw-r00001-*"):
        p.unlink()
    assert Curator(tiny_config(d, out), 1, 2).run()["clips_accepted"] == full[1] == 2


def test_output_of_another_run_is_refused(two_videos, video_dir, tmp_path):
    out = tmp_path / "out"
    Curator(tiny_config(two_videos, out)).run()
    with pytest.raises(ValueError, match=r"sharpness\.min"):
        Curator(tiny_config(two_videos, out, "sharpness.min=50")).run()
    with pytest.raises(ValueError, match="input"):
        Curator(tiny_config(video_dir, out)).run()
    with pytest.raises(ValueError, match="world_size"):
        Curator(tiny_config(two_videos, out), 0, 2).run()
    assert Curator(tiny_config(two_videos, out, "workers=2")).run()["clips_this_run"] == 0


def test_validate_uses_absolute_input_and_fails_when_it_is_gone(two_videos, tmp_path, monkeypatch):
    monkeypatch.chdir(two_videos.parent)
    out = tmp_path / "out"
    Curator(tiny_config(Path("in"), out)).run()
    assert json.loads((out / "config.json").read_text())["input"] == str(two_videos)
    monkeypatch.chdir("/")
    assert validate_dir(out)[1] == []
    shutil.rmtree(two_videos)
    (problem,) = validate_dir(out)[1]
    assert "cannot be found" in problem and str(two_videos) in problem


@pytest.mark.parametrize("keep", [0, 1200])
def test_unreadable_shard_is_named_skipped_and_reported(tmp_path, keep, capsys):
    from latent_utils import write_dataset

    write_dataset(tmp_path / "lat", n=6)
    bad = tmp_path / "lat/latent-999999.tar"
    bad.write_bytes(next((tmp_path / "lat").glob("*.tar")).read_bytes()[:keep])  # empty, truncated
    assert not Path(str(bad) + INDEX_SUFFIX).exists()
    loader = LatentLoader(LoaderConfig(shards=str(tmp_path / "lat"), num_workers=0), 0, 1)
    assert loader.skipped_shards == 1 and loader.num_samples == 6
    problems = validate_dir(tmp_path / "lat")[1]
    assert len(problems) == 1 and "latent-999999.tar" in problems[0]
    with pytest.raises(ShardReadError, match=r"latent-999999\.tar"):
        inspect_shard(bad)
    assert cli_main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "latent-999999.tar" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_sigterm_stops_with_one_line_and_resume_is_exact(two_videos, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    real = Curator._finish

    def term_on_second(self, results, stages, writer):
        if self._calls == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        self._calls += 1
        return real(self, results, stages, writer)

    monkeypatch.setattr(Curator, "_calls", 0, raising=False)
    monkeypatch.setattr(Curator, "_finish", term_on_second)
    argv = ["curate", "--input", str(two_videos), "--output", str(out), "--preset", "tiny", "--set", "caption.batch_size=1", "--set", "aesthetic.batch_size=1", "--set", "output_format.max_clips_per_shard=2"]  # fmt: skip
    assert cli_main(argv) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "Traceback" not in err and "stopped by SIGTERM" in err
    assert len(_records(out)) == 1
    monkeypatch.setattr(Curator, "_finish", real)
    assert cli_main(argv) == 0
    assert len(_keys(out)) == len(set(_keys(out))) == 4 and validate_dir(out)[1] == []
