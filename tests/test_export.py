"""`fedlingua export`: PEFT's own loader on the base model, plus the documented head,
reproduces the run's test logits -- in a fresh Python process, from the model card's code."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from fedlingua.config import RunConfig
from fedlingua.engine import load_final_states, run
from fedlingua.experiment import build, evaluation_rows
from fedlingua.export import export
from fedlingua.models import load_backbone
from fedlingua.training import eval_logits


def _run_logits(run_dir, backbone, lang: str) -> tuple[list[str], np.ndarray]:
    """The test texts of `lang` and the logits the run's own evaluation computes for them."""
    cfg = RunConfig.load(f"{run_dir}/config.toml")
    exp = build(cfg, backbone=backbone)
    data = exp.test[lang]
    logits = np.zeros((len(data), exp.num_labels), dtype=np.float32)
    state = load_final_states(run_dir)[exp.model_for(lang)]
    for index, batch, _ in eval_logits(exp.bench, state, data, 8):
        logits[index] = batch.numpy()
    texts = [ex.text for ex in evaluation_rows(exp.dataset, lang, "test", cfg)]
    return texts, logits


def _card_script(export_dir, texts_file) -> str:
    """The model card's code, pointed at this export and these texts, printing the logits."""
    card = (export_dir / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## How to use it.*?```python\n(.*?)```", card, re.S).group(1)
    code = code.replace('export_dir = "."', f"export_dir = {str(export_dir)!r}")
    code = re.sub(r"texts = \[.*?\]\n", f"texts = json.load(open({str(texts_file)!r}))\n", code)
    return "import json\n" + code + "print(json.dumps(logits.tolist()))\n"


@pytest.mark.parametrize("method", ["prompt-encoder", "lora"])
def test_export_reloads_with_peft_in_a_fresh_process_and_reproduces_logits(
    tmp_path, tiny_model_dir, tiny_config, method
):
    cfg = tiny_config(tmp_path, name="fed", federation__rounds=1)
    cfg.model.name, cfg.method.name = str(tiny_model_dir), method
    backbone = load_backbone(str(tiny_model_dir))
    results = run(cfg, backbone=backbone, log=lambda _: None)
    out = export(results["run_dir"], tmp_path / "export", backbone=backbone)

    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    assert adapter_cfg["base_model_name_or_path"] == str(tiny_model_dir)
    assert json.loads((out / "labels.json").read_text()) == list(
        results["languages"]["fr"]["recall"]
    )
    card = (out / "README.md").read_text()
    assert card.startswith('---\nlanguage: ["fr", "sw", "lg"]')
    assert 'library_name: "peft"' in card and "| fr |" in card

    texts, expected = _run_logits(results["run_dir"], backbone, "sw")
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", _card_script(out, texts_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.array(json.loads(proc.stdout.strip().splitlines()[-1]), dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_load_of_an_export_predicts_like_the_run(tmp_path, tiny_model_dir, tiny_config):
    from fedlingua import load

    cfg = tiny_config(tmp_path, name="mono", paradigm="monolingual", federation__rounds=1)
    cfg.model.name = str(tiny_model_dir)
    backbone = load_backbone(str(tiny_model_dir))
    results = run(cfg, backbone=backbone, log=lambda _: None)
    out = export(results["run_dir"], tmp_path / "export", backbone=backbone)
    assert sorted(p.name for p in out.iterdir() if (p / "head.safetensors").exists()) == [
        "fr",
        "lg",
        "sw",
    ]
    from_run = load(results["run_dir"], backbone=backbone).predict(["Kiswahili"], lang="sw")
    from_export = load(out, backbone=backbone).predict(["Kiswahili"], lang="sw")
    assert from_run == from_export
    with torch.no_grad(), pytest.raises(Exception, match="monolingual"):
        load(out, backbone=backbone).predict(["Kiswahili"])
