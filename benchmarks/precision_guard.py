"""Accuracy guard for the fast precisions: the same SIB-200 federated prompt-encoder run in
plain fp32, in fp32-onednn (fp32 matrix products through oneDNN) and in bf16 autocast.

bf16 autocast covers the frozen backbone's forward/backward; trainable tensors, the
optimizer state, pooling and the loss stay fp32. A precision passes when the average
per-language test accuracy of its run is within 0.5 points of the plain fp32 run.

Usage:  .venv/bin/python benchmarks/precision_guard.py
Writes benchmarks/results/precision_guard.md and .json. Needs ../shared/data (SIB-200).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from fedlingua.config import RunConfig
from fedlingua.data import default_data_root
from fedlingua.models import load_backbone
from fedlingua.paradigms import prepare, run
from fedlingua.runtime import environment

RESULTS = Path(__file__).resolve().parent / "results"
LANGS = [
    "eng_Latn",
    "fra_Latn",
    "hau_Latn",
    "yor_Latn",
    "amh_Ethi",
    "lug_Latn",
    "sna_Latn",
    "zho_Hans",
]
PRECISIONS = ("fp32", "fp32-onednn", "bf16")
OVERRIDES = [
    "data.source=sib200",
    f"data.languages={json.dumps(LANGS)}",
    "data.max_train_per_client=128",
    "data.max_length=64",
    "federation.rounds=4",
    "evaluation.every=4",
    "progress=false",
]


def main() -> None:
    if default_data_root() is None:
        sys.exit("needs ../shared/data (SIB-200); set FEDLINGUA_DATA_ROOT")
    backbone = load_backbone("e5-small")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = RunConfig.load(None, [*OVERRIDES, f"output_dir={json.dumps(tmp)}"])
        prep = prepare(base, backbone=backbone, virtual_tokens=base.method.num_virtual_tokens)
        for precision in PRECISIONS:
            cfg = RunConfig.load(
                None,
                [
                    *OVERRIDES,
                    f"output_dir={json.dumps(tmp)}",
                    f"model.precision={precision}",
                    f"name={precision}",
                ],
            )
            t0 = time.perf_counter()
            res = run(cfg, prepared=prep, log=lambda s: None)
            out[precision] = {
                "languages": {k: v["accuracy"] for k, v in res["languages"].items()},
                "average": res["averages"]["average"],
                "train_s": res["time"]["train_s"],
                "wall_s": time.perf_counter() - t0,
            }
            print(precision, out[precision], flush=True)
    diffs = {p: 100 * (out[p]["average"] - out["fp32"]["average"]) for p in PRECISIONS[1:]}
    passed = {p: abs(d) <= 0.5 for p, d in diffs.items()}
    command = "python benchmarks/precision_guard.py"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "precision_guard.json").write_text(
        json.dumps(
            {
                "command": command,
                "overrides": OVERRIDES,
                "runs": out,
                "difference_points": diffs,
                "passed": passed,
                "environment": environment(),
            },
            indent=2,
        )
        + "\n"
    )
    lines = [
        "# Precision accuracy guard (SIB-200, federated prompt-encoder)",
        "",
        f"Command: `{command}`; settings: {', '.join(OVERRIDES)}; seed 0; e5-small; "
        f"torch threads {torch.get_num_threads()}.",
        "",
        "| language | " + " | ".join(f"{p} accuracy" for p in PRECISIONS) + " |",
        "|---|" + "---:|" * len(PRECISIONS),
    ]
    for lang in out["fp32"]["languages"]:
        cells = [f"{100 * out[p]['languages'][lang]:.1f}" for p in PRECISIONS]
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    cells = [f"{100 * out[p]['average']:.2f}" for p in PRECISIONS]
    lines += [
        "| **average** | " + " | ".join(cells) + " |",
        "| training time (s) | "
        + " | ".join(f"{out[p]['train_s']:.0f}" for p in PRECISIONS)
        + " |",
        "",
    ]
    for p in PRECISIONS[1:]:
        lines.append(
            f"- {p} - fp32: {diffs[p]:+.2f} points -> guard (|diff| <= 0.5) "
            f"{'PASSED' if passed[p] else 'FAILED'}; training "
            f"{out['fp32']['train_s'] / out[p]['train_s']:.2f}x as fast as plain fp32."
        )
    (RESULTS / "precision_guard.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
