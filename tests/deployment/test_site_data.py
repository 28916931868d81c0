"""Across organisations: each SuperNode reads only its own data, the coordinator reads none.

Two sites, each holding one language in its own folder (the folder-source layout), named
only in its SuperNode's node config (`federation.sh up --node-data A,B`); the run config
names no data at all. Every process the federation starts carries an audit hook on
`open` (a `sitecustomize` on its PYTHONPATH) that logs the data files it opens. The
test checks those logs, and that the deployed run equals the in-process run of the same
two languages, read from one folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from federation_helpers import needs_deployment

from fedlingua.data import load_dataset
from fedlingua.engine import load_final_states, run

pytestmark = needs_deployment

AUDIT_HOOK = """
import os, sys
_dir, _root = os.environ["FEDLINGUA_TEST_AUDIT_DIR"], os.environ["FEDLINGUA_TEST_DATA_ROOT"]
_log = os.path.join(_dir, f"{os.getpid()}.log")
with open(_log, "a") as fh:
    fh.write("argv " + " ".join(sys.argv) + "\\n")
def _hook(event, args, _open=open):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if path.startswith(_root) or "locale-data" in path:
            with _open(_log, "a") as fh:
                fh.write("open " + path + "\\n")
sys.addaudithook(_hook)
"""


def _write_language(root: Path, lang: str, dataset) -> None:
    """`root/lang/{train,dev,test}.tsv` and labels.txt from a loaded dataset."""
    folder = root / lang
    folder.mkdir(parents=True)
    (folder / "labels.txt").write_text("\n".join(dataset.labels) + "\n")
    for split in ("train", "dev", "test"):
        with (folder / f"{split}.tsv").open("w", newline="") as fh:
            out = csv.writer(fh, delimiter="\t")
            out.writerow(["text", "label"])
            for ex in dataset.split(lang, split):
                out.writerow([ex.text, dataset.labels[ex.label]])


def _audit(folder: Path) -> dict[str, list[str]]:
    """argv of each audited process -> the data files it opened."""
    opened = {}
    for log in folder.glob("*.log"):
        lines = log.read_text().splitlines()
        argv = lines[0].removeprefix("argv ")
        opened[f"{log.stem} {argv}"] = [x.removeprefix("open ") for x in lines[1:]]
    return opened


def test_each_site_reads_only_its_own_folder_and_the_coordinator_none(
    deployment, tiny_config, tiny_model_dir, tmp_path
):
    data_root = tmp_path / "data"
    cldr = load_dataset("cldr", languages=["fr", "sw"], seed=0)
    site_a, site_b, pooled = data_root / "site-a", data_root / "site-b", data_root / "pooled"
    _write_language(site_a, "fr", cldr)
    _write_language(site_b, "sw", cldr)
    for lang in ("fr", "sw"):
        _write_language(pooled, lang, cldr)

    cfg = tiny_config(tmp_path / "runs", name="sites", federation__rounds=2)
    # a saved model folder: no process builds a tokenizer from CLDR text (babel's files)
    cfg.model.name, cfg.model.precision = str(tiny_model_dir), "fp32"
    cfg.data.source, cfg.data.languages = "nowhere", None  # the coordinator reads no data
    cfg.evaluation.select_on_dev = True
    cfg.validate()
    path = tmp_path / "sites.toml"
    path.write_text(cfg.to_toml())

    audit = tmp_path / "audit"
    hooks = tmp_path / "hooks"
    audit.mkdir()
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT_HOOK)
    deployment.env |= {
        "PYTHONPATH": str(hooks),
        "FEDLINGUA_TEST_AUDIT_DIR": str(audit),
        "FEDLINGUA_TEST_DATA_ROOT": str(data_root),
    }
    deployment.up(2, path, "--node-data", f"{site_a},{site_b}")
    proc = deployment.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr + deployment.logs()

    # what each process opened
    opened = _audit(audit)
    ports = {deployment.port + 1: site_a, deployment.port + 2: site_b}
    readers = {}
    for who, files in opened.items():
        node = [p for p in ports if f"--runtime-api-address 127.0.0.1:{p}" in who]
        if not node:  # SuperLink, ServerApp, SuperNodes, CLI: no data file at all
            assert not files, f"{who} opened {files}"
            continue
        own = ports[node[0]]
        assert all(f.startswith(str(own) + "/") for f in files), f"{who} opened {files}"
        readers[own] = files
    assert {p.name for p in readers} == {"site-a", "site-b"}, opened
    for site, files in readers.items():
        assert any(f.endswith("train.tsv") for f in files), (site, files)
    assert any("flwr-serverapp" in who or "serverapp" in who for who in opened), list(opened)

    # what the coordinator learnt, and the results: both languages, dev and test
    run_dir = Path(cfg.output_dir) / "sites"
    sites = json.loads((run_dir / "sites.json").read_text())["sites"]
    assert [(s["client_id"], s["eval_languages"]) for s in sites] == [
        ("fr", ["fr"]),
        ("sw", ["sw"]),
    ]
    assert sites[0]["labels"] == list(cldr.labels)
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["languages"]) == {"fr", "sw"}
    rounds = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(set(r["dev"]) == {"fr", "sw"} for r in rounds)

    # the in-process run of the same two languages from one folder: the same model
    cfg.name, cfg.data.source = "in-process", str(pooled)
    local = run(cfg, log=lambda line: None)
    deployed, expected = load_final_states(run_dir)["global"], load_final_states(local["run_dir"])
    for key, tensor in expected["global"].items():
        torch.testing.assert_close(deployed[key], tensor, rtol=1e-4, atol=1e-6, msg=key)
    for lang, scores in local["languages"].items():
        assert results["languages"][lang]["accuracy"] == pytest.approx(scores["accuracy"])
        assert results["languages"][lang]["confusion"] == scores["confusion"]
    assert results["selected_round"] == local["selected_round"]
