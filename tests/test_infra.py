"""The cluster launchers in infra/: they parse, agree with one another, build exactly the commands
docs/runbook.md shows, and those commands are accepted by torchrun, mugv-train and mugv-data."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from torch.distributed.run import get_args_parser

import mugv_data.cli
from mugv_data.dist import rank_world
from mugv_train.cli import build_parser
from mugv_train.config import load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()

# The example the runbook walks through: job 123456 on 4 nodes of 8 GPUs.
TRAIN_ARGS = ["configs/10b-720p.toml", "--set", "run_dir=/shared/runs/10b"]
TRAIN_ARGS += ["--set", "parallel.dp_replicate=4"]
SLURM_ENV = {
    "SLURM_NNODES": "4",
    "SLURM_JOB_ID": "123456",
    "SLURM_JOB_NODELIST": "gpu-[001-004]",
    "SLURM_GPUS_ON_NODE": "8",
}


def _runbook_commands() -> set[str]:
    """Every line of the runbook's code blocks, continuations joined and whitespace collapsed."""
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", RUNBOOK, flags=re.DOTALL)
    text = "\n".join(blocks).replace("\\\n", " ")
    return {" ".join(line.split()) for line in text.splitlines() if line.strip()}


def _sbatch(script: str, args: list[str], env: dict[str, str], tmp_path: Path):
    """Run an sbatch script in dry-run mode with a fake `scontrol` that expands the node list."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(
        '#!/bin/sh\n[ "$1 $2" = "show hostnames" ] || exit 1\n'
        "printf 'gpu-001\\ngpu-002\\ngpu-003\\ngpu-004\\n'\n"
    )
    scontrol.chmod(0o755)
    full_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MUGV_DRY_RUN": "1", **env}
    return subprocess.run(
        ["bash", str(INFRA / "slurm" / script), *args],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )


def _sbatch_exports(script: str) -> dict[str, str]:
    """`export NAME=${NAME:-default}` lines of a script -> {NAME: default}."""
    text = (INFRA / "slurm" / script).read_text()
    return dict(re.findall(r"^export (\w+)=\$\{\1:-([^}]*)\}", text, flags=re.MULTILINE))


def _manifest(name: str) -> dict:
    docs = list(yaml.safe_load_all((INFRA / "k8s" / name).read_text()))
    assert len(docs) == 1
    return docs[0]


# -- Slurm ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["train.sbatch", "curate.sbatch"])
def test_sbatch_scripts_pass_bash_n(script):
    result = subprocess.run(["bash", "-n", str(INFRA / "slurm" / script)], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_slurm_train_builds_the_runbook_command(tmp_path):
    result = _sbatch("train.sbatch", TRAIN_ARGS, SLURM_ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip()
    assert command in _runbook_commands()
    assert f"sbatch --nodes 4 infra/slurm/train.sbatch {shlex.join(TRAIN_ARGS)}" in (
        _runbook_commands()
    )
    assert "--rdzv-endpoint gpu-001:29500" in command
    assert "--resume auto" in command


def test_slurm_train_is_requeueable():
    text = (INFRA / "slurm" / "train.sbatch").read_text()
    assert "#SBATCH --requeue" in text
    assert re.search(r"^#SBATCH --signal=B:USR1@\d+$", text, flags=re.MULTILINE)
    assert re.search(r"^trap stop_and_requeue USR1$", text, flags=re.MULTILINE)


def test_slurm_train_saves_then_requeues_on_the_warning_signal(tmp_path):
    """USR1 (time limit near): the training step gets SIGTERM (the trainers save and exit), and
    only then is the job requeued."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    events = tmp_path / "events"
    fakes = {  # srun: a step that records SIGTERM; scontrol: expands nodes, records requeue
        "srun": f"trap 'echo stopped >> {events}; kill $!; exit 0' TERM\n"
        f"sleep 60 >/dev/null 2>&1 &\necho started >> {events}\nwait\n",
        "scontrol": 'if [ "$1 $2" = "show hostnames" ]; then echo gpu-001; exit 0; fi\n'
        f'echo "$@" >> {events}\n',
    }
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}")
        (bin_dir / name).chmod(0o755)
    env = {**SLURM_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["bash", str(INFRA / "slurm" / "train.sbatch"), *TRAIN_ARGS],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not events.exists():  # until the (fake) training step runs
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert events.read_text().splitlines() == ["started", "stopped", "requeue 123456"]
    assert "time limit near, saving and requeueing" in stderr


def test_slurm_train_refuses_to_run_outside_an_allocation(tmp_path):
    result = _sbatch("train.sbatch", TRAIN_ARGS, {}, tmp_path)
    assert result.returncode != 0 and "not inside a Slurm allocation" in result.stderr
    result = _sbatch("train.sbatch", [], SLURM_ENV, tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("usage:")


def test_slurm_curate_builds_the_runbook_command(tmp_path):
    env = {"SLURM_CPUS_PER_TASK": "16", "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "64"}
    result = _sbatch("curate.sbatch", ["videos.jsonl", "/shared/curated"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    commands = _runbook_commands()
    assert result.stdout.strip() in commands
    submit = "sbatch --parsable --array=0-63 infra/slurm/curate.sbatch videos.jsonl /shared/curated"
    assert f"jid=$({submit})" in commands
    assert rank_world(env) == (3, 64)


# -- Kubernetes -----------------------------------------------------------------------------------
def test_k8s_manifests_parse():
    kinds = {name: _manifest(name)["kind"] for name in ("train-jobset.yaml", "curate-job.yaml")}
    assert kinds == {"train-jobset.yaml": "JobSet", "curate-job.yaml": "Job"}
    assert _manifest("curate-validate-job.yaml")["kind"] == "Job"


def test_k8s_training_jobset_is_consistent_and_matches_the_runbook():
    jobset = _manifest("train-jobset.yaml")
    (rjob,) = jobset["spec"]["replicatedJobs"]
    job = rjob["template"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    argv = [*container["command"], *container["args"]]
    assert " ".join(argv) in _runbook_commands()
    torchrun = get_args_parser().parse_args(argv[1:])
    assert int(torchrun.nnodes) == job["parallelism"] == job["completions"]
    assert job["completionMode"] == "Indexed"
    assert torchrun.nproc_per_node == str(container["resources"]["limits"]["nvidia.com/gpu"])
    name = jobset["metadata"]["name"]
    assert torchrun.rdzv_endpoint == f"{name}-{rjob['name']}-0-0.{name}:29500"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == _sbatch_exports("train.sbatch")


def test_k8s_curation_job_gives_every_pod_its_rank():
    job = _manifest("curate-job.yaml")
    spec = job["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert " ".join([*container["command"], *container["args"]]) in _runbook_commands()
    env = {e["name"]: e for e in container["env"]}
    assert spec["completionMode"] == "Indexed"
    assert int(env["WORLD_SIZE"]["value"]) == spec["completions"] == spec["parallelism"]
    field = env["RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert rank_world({"RANK": "15", "WORLD_SIZE": env["WORLD_SIZE"]["value"]}) == (15, 16)
    (validate,) = _manifest("curate-validate-job.yaml")["spec"]["template"]["spec"]["containers"]
    argv = [*validate["command"], *validate["args"]]
    assert " ".join(argv) in _runbook_commands()
    assert argv[2] == container["args"][container["args"].index("--output") + 1]


# -- the commands are accepted by the real CLIs ---------------------------------------------------
def _train_commands() -> list[list[str]]:
    found = [shlex.split(c) for c in _runbook_commands() if "-m mugv_train train" in c]
    assert len(found) == 2  # Slurm and Kubernetes
    return found


@pytest.mark.parametrize("index", [0, 1])
def test_runbook_training_commands_parse_with_torchrun_and_mugv_train(index):
    argv = _train_commands()[index]
    argv = argv[argv.index("torchrun") + 1 :]
    torchrun = get_args_parser().parse_args(argv)
    assert torchrun.rdzv_backend == "c10d" and torchrun.module
    assert torchrun.training_script == "mugv_train"
    args = build_parser().parse_args(torchrun.training_script_args)
    assert (args.command, args.resume) == ("train", "auto")
    # The overrides name real config fields (the preset stands in for the TOML file).
    cfg = load_config(Path(args.config).stem, args.overrides)
    assert cfg.run_dir.endswith("/runs/10b")


@pytest.mark.parametrize("source", ["curate.sbatch", "curate-job.yaml"])
def test_curate_commands_parse_with_mugv_data(monkeypatch, tmp_path, source):
    if source == "curate.sbatch":
        result = _sbatch(source, ["videos.jsonl", "/shared/curated"], {}, tmp_path)
        argv = shlex.split(result.stdout)
    else:
        (container,) = _manifest(source)["spec"]["template"]["spec"]["containers"]
        argv = [*container["command"], *container["args"]]
    seen = {}

    def fake_curate(cfg):
        seen["cfg"] = cfg
        return {"inputs": 0, "inputs_done": 0, "clips_accepted": 0, "rejects": 0, "reject_reasons": {}}  # fmt: skip

    # the package re-exports the function `curate`, which hides the module of the same name
    monkeypatch.setattr(importlib.import_module("mugv_data.curate"), "curate", fake_curate)
    assert argv[0] == "mugv-data" and mugv_data.cli.main(argv[1:]) == 0
    cfg = seen["cfg"]
    assert Path(cfg.output) == Path(argv[argv.index("--output") + 1])
    assert cfg.workers == int(argv[argv.index("--workers") + 1])


# -- Docker ---------------------------------------------------------------------------------------
def _package_names() -> dict[str, str]:
    """packages/<folder> -> its distribution name."""
    return {
        p.parent.name: tomllib.loads(p.read_text())["project"]["name"]
        for p in sorted((ROOT / "packages").glob("*/pyproject.toml"))
    }


def test_dockerfile_installs_every_package_by_its_name():
    text = (INFRA / "docker" / "Dockerfile").read_text()
    refs = re.findall(
        r'"([a-z0-9-]+)(?:\[([a-z0-9,]+)\])? @ file:///opt/mugv/packages/([\w-]+)"', text
    )
    folders = _package_names()
    assert sorted({name for name, _, _ in refs}) == sorted(folders.values())
    assert ("mugv-dit", "fa4", "mugv-dit") in refs  # the optional FlashAttention-4 layer
    assert len(folders) == 6
    for name, extras, folder in refs:
        assert folders[folder] == name
        project = tomllib.loads((ROOT / "packages" / folder / "pyproject.toml").read_text())
        optional = project["project"].get("optional-dependencies", {})
        assert all(e in optional for e in filter(None, extras.split(",")))
    for line in re.findall(r"pip install[^\n]*", text):
        assert "-c constraints.txt" in line, line
    for source in re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE):
        assert (ROOT / source).exists()
    assert re.search(r"^COPY packages/ packages/$", text, flags=re.MULTILINE)
    assert "WORKDIR /opt/mugv" in text
