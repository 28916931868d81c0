"""Federated evaluation and the roll call: sites score their own rows and report counts.

The server's per-language scores are built from the sites' confusion matrices only; they
equal what one process holding every row computes. Malformed evaluation replies are
refused like malformed training replies, a missing one is recorded, and the roll call
refuses duplicate client ids and labels outside a declared list.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.app import ConfigRecord, MetricRecord, RecordDict
from hypothesis import given, settings
from hypothesis import strategies as st

from fedlingua.config import ConfigError
from fedlingua.engine.federations import simulation_grid
from fedlingua.evaluation import confusion_matrix, scores, scores_from_confusion
from fedlingua.experiment import build, coordinate
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.payload import CLIENT_KEY, METRICS_KEY
from fedlingua.federation.rollcall import Roster, SiteInfo
from fedlingua.federation.scoring import FederatedEvaluation, parse_counts
from fedlingua.federation.site import confusion_key, identity


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60
            ),
        )
    )
)
def test_scores_from_counts_equal_scores_from_predictions(case):
    k, rows = case
    gold, preds = [g for g, _ in rows], [p for _, p in rows]
    labels = [f"c{i}" for i in range(k)]
    assert scores_from_confusion(confusion_matrix(preds, gold, k), labels) == scores(
        np.asarray(preds), gold, labels
    )


def test_sites_evaluation_equals_one_process_holding_every_row(
    tiny_config, tiny_backbone, tmp_path
):
    # two sites per language: each scores its own half of the language's rows
    cfg = tiny_config(tmp_path, data__clients_per_language=2, federation__rounds=1)
    exp = build(cfg, backbone=tiny_backbone)
    sites = exp.sites()
    assert [s.client_id for s in sites] == ["fr-0", "fr-1", "sw-0", "sw-1", "lg-0", "lg-1"]
    halves = [len(s.evaluation["fr"]["test"]) for s in sites[:2]]
    assert sum(halves) == len(exp.test["fr"]) and min(halves) > 0
    assert "sw" not in sites[0].evaluation  # a site holds only its own language's rows
    grid = simulation_grid(exp)
    coord = coordinate(cfg, grid, backbone=tiny_backbone, bench=exp.bench, expected=6)
    state = {"global": exp.bench.get_state()}
    for split in ("dev", "test"):
        assert coord.evaluate(state, split) == exp.evaluate(state, split)
    assert coord.failures == {}


def _bad_reply(kind: str, k: int):
    def handler(message_type, content, context):
        if message_type == "query":
            return identity_of(context.node_id)
        n = len(content["config"]["models"])
        counts = [1] * (k * k)
        metrics = {confusion_key("test", i): list(counts) for i in range(n)}
        if kind == "wrong size":
            metrics[confusion_key("test", 0)] = [1, 2, 3]
        elif kind == "negative":
            metrics[confusion_key("test", 0)] = [-1] + counts[1:]
        elif kind == "float":
            metrics[confusion_key("test", 0)] = [0.5] * (k * k)
        elif kind == "huge":
            metrics[confusion_key("test", 0)] = [2**50] + counts[1:]
        elif kind == "extra key":
            metrics["per-example-0"] = 1.0
        elif kind == "nan time":
            metrics["compute-s"] = float("nan")
        elif kind == "missing":
            del metrics[confusion_key("test", 0)]
        elif kind == "raises":
            raise ValueError("cannot score")
        return RecordDict({METRICS_KEY: MetricRecord(metrics)})

    return handler


def identity_of(node: int) -> RecordDict:
    from fedlingua.federation.client import ClientSite
    from fedlingua.topology import concat

    lang = ["fr", "sw"][node - 1]
    return identity(ClientSite(lang, lang, concat([]), {lang: {}}, ("a", "b")))


@pytest.mark.parametrize(
    "kind",
    ["wrong size", "negative", "float", "huge", "extra key", "nan time", "missing", "raises"],
)
def test_a_malformed_evaluation_reply_is_refused_and_recorded(kind):
    good, bad = _bad_reply("good", 2), _bad_reply(kind, 2)
    grid = InProcessGrid({1: good, 2: bad}, typed=True)
    roster = Roster.of([SiteInfo.from_record(n, identity_of(n)[CLIENT_KEY]) for n in (1, 2)])
    config = ConfigRecord({"labels": '["a", "b"]', "eval-batch-size": 4})
    evaluation = FederatedEvaluation(grid, roster, ("a", "b"), config)
    out = evaluation.request(
        {"global": {}}, lambda s: [("global", x) for x in s.eval_languages], ["test"]
    )
    assert set(out.failed) == {"sw"}, out.failed
    assert list(out.counts) == [("test", "global", "fr")]
    assert out.counts[("test", "global", "fr")].tolist() == [[1, 1], [1, 1]]


def test_a_site_that_does_not_answer_is_recorded_not_guessed():
    class Silent(InProcessGrid):
        def pull_messages(self, message_ids):
            return [m for m in super().pull_messages(message_ids) if m.metadata.src_node_id != 2]

    grid = Silent({1: _bad_reply("good", 2), 2: _bad_reply("good", 2)}, typed=True)
    roster = Roster.of([SiteInfo.from_record(n, identity_of(n)[CLIENT_KEY]) for n in (1, 2)])
    evaluation = FederatedEvaluation(grid, roster, ("a", "b"), ConfigRecord({}), timeout=0.0)
    out = evaluation.request({"global": {}}, lambda s: [("global", s.eval_languages[0])], ["test"])
    assert out.failed == {"sw": "no evaluation reply before the timeout"}


def _info(node: int, cid: str, labels=("a", "b")) -> SiteInfo:
    record = ConfigRecord(
        {
            "client-id": cid,
            "lang": cid,
            "languages": [cid],
            "train-sizes": [5],
            "eval-languages": [cid],
            "labels": list(labels),
        }
    )
    return SiteInfo.from_record(node, record)


def test_the_roll_call_fixes_the_labels_and_refuses_what_does_not_fit():
    roster = Roster.of([_info(7, "sw", ("b", "c")), _info(3, "fr", ("a", "b"))])
    assert roster.labels() == ("a", "b", "c")  # union, in client-id order
    assert roster.labels(["c", "b", "a"]) == ("c", "b", "a")
    with pytest.raises(ConfigError, match=r"site 'sw' \(node 7\) has labels \['c'\] outside"):
        roster.labels(["a", "b"])
    with pytest.raises(ConfigError, match="nodes 3 and 9 both answer as client 'fr'"):
        Roster.of([_info(3, "fr"), _info(9, "fr")])
    bad = ConfigRecord({"client-id": "fr", "lang": "fr", "train-sizes": [1, 2]})
    with pytest.raises(ValueError, match="one count per language"):
        SiteInfo.from_record(1, bad)


def test_a_zero_shot_language_is_an_evaluation_only_site(tiny_config, tiny_backbone, tmp_path):
    from fedlingua.engine import run
    from fedlingua.engine.federations import build_federations, simulated_coordinator

    kw = dict(data__languages=["fr", "sw"], data__zero_shot_languages=["lg"])
    exp = build(tiny_config(tmp_path, **kw), backbone=tiny_backbone)
    coord = simulated_coordinator(exp)
    (lg,) = [s for s in coord.roster.sites if s.client_id == "lg"]
    assert not lg.trains and lg.eval_languages == ("lg",)
    (fed,) = build_federations(coord).values()
    assert sorted(coord.roster.names[n] for n in fed.grid.get_node_ids()) == ["fr", "sw"]
    results = run(tiny_config(tmp_path, name="zs", **kw), backbone=tiny_backbone, log=print)
    assert results["languages"]["lg"]["train_examples"] == 0
    assert results["averages"]["zero_shot_average"] == results["languages"]["lg"]["accuracy"]
    for record in json.loads("[" + ",".join(open(f"{results['run_dir']}/metrics.jsonl")) + "]"):
        assert "lg" not in record["federations"]["global"]["sampled"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([confusion_key("test", 0), confusion_key("dev", 0), "compute-s", "x"]),
        st.one_of(
            st.integers(-(2**62), 2**62),
            st.floats(allow_nan=True),
            st.lists(st.integers(-5, 2**45), max_size=6),
            st.lists(st.floats(allow_nan=True), max_size=4),
        ),
    )
)
def test_any_evaluation_reply_parses_or_is_refused_never_crashes(metrics):
    content = RecordDict({METRICS_KEY: MetricRecord(metrics)})
    try:
        parsed, compute = parse_counts(content, [("global", "fr")], ["test"], 2)
    except (KeyError, TypeError, ValueError):
        return
    (counts,) = parsed.values()
    assert counts.shape == (2, 2) and (counts >= 0).all() and compute >= 0
