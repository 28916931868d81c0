"""Payload audit: every message a client sends in a run holds only what it is declared to hold.

Clients log each message as it leaves (`FEDLINGUA_PAYLOAD_LOG`, the outermost client mod,
after any DP mod); the audit then proves, message by message, that it holds only the
declared trainable tensors (names, shapes, floating point), scalar metrics and the client's
identity record: no text, token ids, labels or per-example values. It runs on in-process
runs (several methods and DP modes, with client failures) and on a real `flwr run`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from flower_processes import needs_flwr_cli
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from fedlingua.engine import run
from fedlingua.federation.payload import ARRAYS_KEY, CLIENT_KEY, METRICS_KEY
from fedlingua.privacy.payload import ENV, Declared, audit_log, audit_reply


@pytest.mark.parametrize(
    ("method", "privacy"),
    [
        ("prompt-encoder", {}),
        ("lora", {"dp": "local", "noise_multiplier": 1.0}),
        ("full", {"dp": "central-adaptive", "noise_multiplier": 1.0, "clipping": "client"}),
    ],
)
def test_every_message_of_an_in_process_run_holds_only_declared_tensors_and_metrics(
    tmp_path, monkeypatch, tiny_backbone, tiny_config, declared_and_texts, method, privacy
):
    log = tmp_path / "payloads"
    monkeypatch.setenv(ENV, str(log))
    cfg = tiny_config(
        tmp_path,
        name="r",
        method__name=method,
        federation__rounds=3,
        federation__client_dropout=0.3,
    )
    for key, value in privacy.items():
        setattr(cfg.privacy, key, value)
    cfg.validate()
    results = run(cfg, backbone=tiny_backbone, log=lambda s: None)
    declared, texts = declared_and_texts(cfg, tiny_backbone)
    assert len(texts) > 500  # the CLDR names long enough to search for

    audit = audit_log(log, declared, texts)
    assert audit.problems == {}
    rounds = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    succeeded = sum(len(r["federations"]["global"]["succeeded"]) for r in rounds)
    failed = sum(len(r["federations"]["global"]["failed"]) for r in rounds)
    assert failed > 0, "the seed should make some client fail (error replies are audited too)"
    evaluated = audit.by_kind["evaluate"]  # every site scores test every round: 3 x 3
    assert (audit.replies, audit.errors) == (succeeded + 3 + evaluated, failed)
    assert audit.by_kind == {"query": 3, "train": succeeded + failed, "evaluate": 9}
    assert results["communication"]["bytes_up"] > 0


# ---- the checker catches what must not leave -------------------------------------------------
def _clean() -> tuple[RecordDict, Declared]:
    declared = Declared({"w": (2, 3)}, {"fr": "fr"})
    content = RecordDict(
        {
            ARRAYS_KEY: ArrayRecord({"w": Array(np.zeros((2, 3), dtype=np.float32))}),
            METRICS_KEY: MetricRecord({"num-examples": 4, "train-loss": 0.5}),
            CLIENT_KEY: ConfigRecord({"client-id": "fr", "lang": "fr"}),
        }
    )
    return content, declared


def _spoiled(kind: str) -> RecordDict:
    content, _ = _clean()
    if kind == "token ids":
        content[ARRAYS_KEY]["w"] = Array(np.zeros((2, 3), dtype=np.int64))
    elif kind == "extra tensor":
        content[ARRAYS_KEY]["input_ids"] = Array(np.zeros((4, 7), dtype=np.float32))
    elif kind == "per-example shape":
        content[ARRAYS_KEY]["w"] = Array(np.zeros((4, 3), dtype=np.float32))
    elif kind == "per-example metric":
        content[METRICS_KEY]["train-loss"] = [0.1, 0.2, 0.3, 0.4]
    elif kind == "undeclared metric":
        content[METRICS_KEY]["label-0-count"] = 3
    elif kind == "extra record":
        content["texts"] = ConfigRecord({"row": "une phrase d'entraînement"})
    elif kind == "text in identity":
        content[CLIENT_KEY]["lang"] = "une phrase d'entraînement"
    elif kind == "unknown client":
        content[CLIENT_KEY]["client-id"] = "sw"
    return content


@pytest.mark.parametrize(
    "kind",
    [
        "token ids",
        "extra tensor",
        "per-example shape",
        "per-example metric",
        "undeclared metric",
        "extra record",
        "text in identity",
        "unknown client",
    ],
)
def test_the_audit_flags_every_kind_of_leak(kind):
    clean, declared = _clean()
    assert audit_reply(clean, declared, [b"une phrase d'entra\xc3\xaenement"]) == []
    problems = audit_reply(_spoiled(kind), declared, [b"une phrase d'entra\xc3\xaenement"])
    assert problems, kind


# ---- the Flower path: `flwr run` with the payload log on in every ClientApp process ---------
@needs_flwr_cli
def test_every_message_a_client_app_sends_under_flwr_run_is_clean(
    tmp_path, flwr_env, flwr_run, tiny_model_dir, tiny_config, declared_and_texts
):
    cfg = tiny_config(tmp_path / "runs", name="flower-audit", federation__rounds=2)
    cfg.model.name = str(tiny_model_dir)
    cfg.data.languages = ["fr", "sw"]
    cfg.data.max_train_per_client = 32
    config_path = tmp_path / "run.toml"
    config_path.write_text(cfg.to_toml())
    log = tmp_path / "payloads"
    proc = flwr_run(flwr_env | {ENV: str(log)}, config_path, supernodes=2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from fedlingua.models import load_backbone

    declared, texts = declared_and_texts(cfg, load_backbone(str(tiny_model_dir)))
    audit = audit_log(log, declared, texts)
    assert audit.problems == {}
    # the roll call (one identity per SuperNode), 2 rounds x 2 sites of training and of
    # evaluation (each site scores its own test rows)
    assert audit.by_kind == {"query": 2, "train": 4, "evaluate": 4} and audit.errors == 0
