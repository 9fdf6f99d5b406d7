"""The report folder: summary.md (and summary.json) with every measured number and its
threshold, beside the loss-curve PNGs and the generated mp4s."""

from __future__ import annotations

import json
from pathlib import Path

from demo.config import ThresholdConfig

# Fraction of a stage's logged steps averaged at its start and at its end.
WINDOW = 0.2


def stage_losses(rows: list[dict]) -> dict[str, dict[str, float]]:
    """metrics.jsonl rows -> per stage: mean loss over its first and last WINDOW of steps."""
    out = {}
    for stage in dict.fromkeys(r["stage"] for r in rows if "loss" in r):
        losses = [r["loss"] for r in rows if r.get("stage") == stage and "loss" in r]
        n = max(1, int(len(losses) * WINDOW))
        first, last = sum(losses[:n]) / n, sum(losses[-n:]) / n
        out[stage] = {"first": first, "last": last, "ratio": last / first, "steps": len(losses)}
    return out


def checks(numbers: dict, th: ThresholdConfig) -> list[dict]:
    """Each threshold with the measured value and whether it passed."""
    rows = []

    def add(name: str, value: float, limit: float, higher_is_better: bool = True) -> None:
        ok = value >= limit if higher_is_better else value <= limit
        rows.append(
            {
                "check": name,
                "value": value,
                "threshold": limit,
                "ok": ok,
                "sense": ">=" if higher_is_better else "<=",
            }
        )

    for key, limit in th.accuracy.items():
        name, _, what = key.rpartition(" ")
        score = numbers["tracking"][name][what]
        add(f"{key} accuracy", score["accuracy"], limit)
        add(f"{key} p-value", score["p_value"], th.max_p_value, False)
    add("VAE held-out PSNR (dB)", numbers["vae_psnr"], th.vae_psnr)
    for run in ("pretrain", "sft"):
        for stage, v in numbers["losses"][run].items():
            limit = th.sft_loss_ratio if run == "sft" else th.loss_drop
            add(f"{run}/{stage} loss last/first", v["ratio"], limit, False)
    pref = numbers["preference"]
    add("DPO training-pair accuracy (policy)", pref["train_policy"], th.preference_accuracy)
    if th.dpo_margin is not None:
        margin = pref["train_policy"] - pref["train_reference"]
        add("DPO training-pair accuracy, policy - reference", margin, th.dpo_margin)
    return rows


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"
    return str(v)


def write(out: Path, numbers: dict, rows: list[dict]) -> Path:
    """Write summary.json and summary.md into `out`; returns the markdown path."""
    (out / "summary.json").write_text(
        json.dumps({"numbers": numbers, "checks": rows}, indent=2) + "\n"
    )
    lines = ["# mugv demo: the main job on its embedded default", ""]
    lines += [
        f"Verdict: **{'PASS' if all(r['ok'] for r in rows) else 'FAIL'}** "
        f"({sum(r['ok'] for r in rows)}/{len(rows)} checks). Wall time "
        f"{numbers['wall_s']:.0f} s on {numbers['device']}.",
        "",
    ]
    lines += [
        "## Colour and direction read back: real unseen clips, then generated ones",
        "",
        "| set | what | correct / total | accuracy | chance | P(>= by chance) | 99% lower bound |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, scores in numbers["tracking"].items():
        for what, s in scores.items():
            lines.append(
                f"| {mode} | {what} | {s['correct']} / {s['total']} | {_fmt(s['accuracy'])} | "
                f"{_fmt(s['chance'])} | {_fmt(s['p_value'])} | {_fmt(s['lower_bound_99'])} |"
            )
    lines += [
        "",
        "## Loss per stage (mean of the first and last 20% of logged steps)",
        "",
        "| run | stage | steps | first | last | last/first |",
        "|---|---|---|---|---|---|",
    ]
    for run, stages in numbers["losses"].items():
        for stage, v in stages.items():
            lines.append(
                f"| {run} | {stage} | {v['steps']} | {_fmt(v['first'])} | {_fmt(v['last'])} | {_fmt(v['ratio'])} |"
            )
    pref = numbers["preference"]
    lines += [
        "",
        "## Other numbers",
        "",
        f"- VAE reconstruction PSNR on held-out clips: {numbers['vae_psnr']:.2f} dB",
        f"- Preference accuracy on the DPO training pairs, last 20% of steps: "
        f"{pref['train_policy']:.3f} (policy) vs {pref['train_reference']:.3f} (frozen reference, "
        "same batches)",
        f"- Preference accuracy on held-out pairs (clip vs. the clip played backwards): "
        f"{pref['after']['correct']}/{pref['after']['total']} after DPO, "
        f"{pref['before']['correct']}/{pref['before']['total']} before (the SFT model)",
        f"- Curation: {json.dumps(numbers['curation'])}",
        f"- Stage times (s): {json.dumps(numbers['timings'])}",
        "",
        "## Checks",
        "",
        "| check | value | threshold | ok |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['check']} | {_fmt(r['value'])} | {r['sense']} {_fmt(r['threshold'])} | {'yes' if r['ok'] else '**no**'} |"
        )
    lines += [
        "",
        "Loss curves: " + ", ".join(f"[{p}]({p})" for p in numbers["plots"]),
        "",
        "Samples (mp4 + settings json) are in `samples/`; per-sample tracker readings "
        "in `summary.json`.",
        "",
    ]
    md = out / "summary.md"
    md.write_text("\n".join(lines))
    return md
