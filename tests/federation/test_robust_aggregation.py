"""One client of five attacks every round: FedMedian and trimmed mean hold, FedAvg does not.

The attacker's replies are well-formed (right names and shapes, finite), so the
server's validation accepts them: only the aggregation rule can defend. The task is
the synthetic marker-word task (chance 25 %), which the tiny backbone learns within a
few rounds. Figures for more rounds: benchmarks/results/robust_aggregation.md.
"""

from __future__ import annotations

import pytest

from fedlingua.data.synthetic import write_marker_dataset
from fedlingua.engine import run
from fedlingua.federation.client import handle_train
from fedlingua.federation.faults import corrupting

LANGUAGES = ["fr", "sw", "ha", "yo", "lg"]


@pytest.fixture(scope="module")
def marker_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("marker-data")
    return write_marker_dataset(root, LANGUAGES, train=120, evaluation=60)


def _accuracy(tmp_path, tiny_backbone, tiny_config, data, strategy, attack=None):
    cfg = tiny_config(
        tmp_path / f"{strategy}-{attack}",
        federation__rounds=6,
        federation__strategy=strategy,
        federation__trim_beta=0.2,
    )
    cfg.data.source = str(data)
    cfg.data.languages = LANGUAGES
    cfg.data.max_train_per_client = None
    cfg.data.max_eval_per_language = None
    cfg.train.lr = 0.03
    handler = corrupting(handle_train, "lg", attack) if attack else None
    results = run(
        cfg.validate(), backbone=tiny_backbone, log=lambda line: None, client_handler=handler
    )
    scores = results["languages"]
    return sum(s["accuracy"] for s in scores.values()) / len(scores)


def test_robust_aggregation_keeps_accuracy_under_attack_and_fedavg_does_not(
    tmp_path, tiny_backbone, tiny_config, marker_data
):
    def acc(strategy, attack=None):
        return _accuracy(tmp_path, tiny_backbone, tiny_config, marker_data, strategy, attack)

    clean = acc("fedavg")
    assert clean >= 0.45, clean  # the task is learned: chance is 0.25
    figures = {
        "fedavg+scaled": acc("fedavg", "scale:100"),
        "fedavg+random": acc("fedavg", "random:5"),
        "fedmedian+scaled": acc("fedmedian", "scale:100"),
        "trimmed+random": acc("fedtrimmedavg", "random:5"),
    }
    print({"clean": clean} | figures)
    assert figures["fedavg+scaled"] <= 0.35 and figures["fedavg+random"] <= 0.35, figures
    assert figures["fedmedian+scaled"] >= clean - 0.1, figures
    assert figures["trimmed+random"] >= clean - 0.1, figures
