"""Which data files does the site serving one language open? An audit hook on `open`.

    PYTHONPATH=<tree>/src python benchmarks/site_border_audit.py [--out FILE.json]

Two languages (fr, sw; CLDR rows written as folder-source files): one folder holding
both (what a config that reads every site's data names) and one folder per site. The
ClientApp's preparation of the site serving fr runs under `sys.addaudithook`; the files it
opened are printed. On a tree with site-local data (`flower_app.task.site_task`) the site
is given only its own folder; on an older tree (`client_task(cfg).site(0, 2)`) the config
names the folder holding both. tests/deployment/test_site_data.py checks the same for
every process of a real deployment.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path


def _write(root: Path, lang: str, dataset) -> None:
    folder = root / lang
    folder.mkdir(parents=True)
    (folder / "labels.txt").write_text("\n".join(dataset.labels) + "\n")
    for split in ("train", "dev", "test"):
        with (folder / f"{split}.tsv").open("w", newline="") as fh:
            out = csv.writer(fh, delimiter="\t")
            out.writerow(["text", "label"])
            out.writerows([ex.text, dataset.labels[ex.label]] for ex in dataset.split(lang, split))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the opened files as JSON here")
    args = parser.parse_args()
    from fedlingua.config import RunConfig
    from fedlingua.data import load_dataset
    from fedlingua.flower_app import task

    root = Path(tempfile.mkdtemp())
    cldr = load_dataset("cldr", languages=["fr", "sw"], seed=0)
    for lang in ("fr", "sw"):
        _write(root / "both", lang, cldr)
    _write(root / "site-fr", "fr", cldr)
    cfg = RunConfig.load(None, ["model.name='tiny'", "data.max_train_per_client=48"])
    opened: list[str] = []

    def hook(event, hook_args):
        if event == "open" and isinstance(hook_args[0], str) and hook_args[0].startswith(str(root)):
            opened.append(hook_args[0].replace(str(root), "DATA"))

    sys.addaudithook(hook)
    if hasattr(task, "site_task"):
        task.site_task(cfg, {"data-dir": str(root / "site-fr")})
        how = "site_task(cfg, {'data-dir': DATA/site-fr})"
    else:
        cfg.data.source = str(root / "both")
        task.client_task(cfg).site(0, 2)
        how = "client_task(cfg).site(0, 2) with data.source = DATA/both"
    files = sorted(set(opened))
    print(f"{how}: the site serving fr opened {len(files)} files")
    for path in files:
        print("  ", path)
    if args.out:
        Path(args.out).write_text(json.dumps({"how": how, "opened": files}, indent=1) + os.linesep)


if __name__ == "__main__":
    main()
