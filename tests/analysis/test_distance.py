"""`fedlingua analyze distance`: language codes, URIEL+ distances, Spearman, the command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fedlingua.data import DEFAULT_CLDR_LOCALES
from fedlingua.data.presets import MASAKHANEWS_LANGS, SIB200_LANGS, XNLI_LANGS
from fedlingua.report import distance as dist
from fedlingua.report import typology

needs_uriel = pytest.mark.skipif(
    not typology.available(),
    reason="URIEL+ is not installed: install the `analysis` extra (pip install -e '.[analysis]')",
)

DATASET_CODES = {
    "sib200": SIB200_LANGS,
    "masakhanews": MASAKHANEWS_LANGS,
    "xnli": XNLI_LANGS,
    "cldr": DEFAULT_CLDR_LOCALES,
}


def test_each_datasets_codes_map_to_iso639_3():
    expected = {
        # SIB-200 (FLORES): the part before the script is already ISO 639-3
        "eng_Latn": "eng", "zho_Hans": "zho", "arb_Arab": "arb", "gaz_Latn": "gaz",
        "swh_Latn": "swh", "npi_Deva": "npi",
        # MasakhaNEWS: ISO 639-3
        "amh": "amh", "pcm": "pcm", "orm": "orm", "swa": "swa", "run": "run",
        # XNLI: ISO 639-1, mapped to the (macro)language's ISO 639-3 code
        "ar": "ara", "zh": "zho", "sw": "swa", "el": "ell", "ur": "urd", "bg": "bul",
        # CLDR locales (a region or script suffix is dropped)
        "lg": "lug", "rn": "run", "sn": "sna", "ha": "hau", "yo": "yor", "pt-BR": "por",
        "sr_Latn": "srp",
    }  # fmt: skip
    assert {code: typology.iso639_3(code) for code in expected} == expected
    for dataset, codes in DATASET_CODES.items():
        mapped = {c: typology.iso639_3(c) for c in codes}
        assert all(m and len(m) == 3 for m in mapped.values()), (dataset, mapped)
    # no code is guessed: unknown two-letter codes and non-codes have none
    assert typology.iso639_3("xx") is None
    assert typology.iso639_3("x-klingon") is None
    assert typology.iso639_3("Latn_eng") is None


@needs_uriel
def test_every_dataset_language_is_in_uriel():
    for dataset, codes in DATASET_CODES.items():
        found, missing = dist._codes(list(codes))
        assert not missing, (dataset, missing)
        assert len(found) == len(codes)


# Reference values returned by urielplus 1.3.2's own URIELPlus().new_distance(kind, [a, b])
# (defaults: angular distance, union aggregation, no imputation); None: it raises "No shared
# features". fedlingua reads the same arrays without instantiating URIELPlus.
REFERENCE = {
    ("eng", "hau"): (0.4154, 1.0, 0.1885, 0.427, 0.5337, 0.481),
    ("eng", "fra"): (0.4204, 0.9386, 0.0246, 0.4576, 0.4753, 0.4542),
    ("eng", "swa"): (0.693, 1.0, 0.2644, 0.2736, 0.484, 0.5467),
    ("eng", "lug"): (0.7196, 1.0, 0.255, None, 0.4928, 0.5835),
    ("eng", "zho"): (0.5141, 1.0, 0.3095, 0.427, 0.4835, 0.4899),
}


@needs_uriel
def test_distances_equal_urielplus_own_values():
    for (a, b), values in REFERENCE.items():
        got = tuple(typology.distance(kind, a, b).value for kind in typology.KINDS)
        assert got == pytest.approx(values, abs=1e-4), (a, b)
    assert typology.distance("syntactic", "eng", "pcm").value is None  # no syntactic data
    # one observed syntactic feature: a distance of 0.0 that the analysis must not use
    thin = typology.distance("syntactic", "eng", "tsn")
    assert (thin.value, thin.shared, thin.usable) == (0.0, 1, False)


@needs_uriel
def test_distances_are_symmetric_zero_to_self_and_within_0_1():
    codes = ["eng", "fra", "hau", "swa", "lug", "zho", "ara", "yor"]
    for kind in typology.KINDS:
        for a in codes:
            self_d = typology.distance(kind, a, a)
            assert self_d.value in (0.0, None)
            for b in codes:
                ab, ba = typology.distance(kind, a, b), typology.distance(kind, b, a)
                assert (ab.value, ab.shared) == (ba.value, ba.shared)
                assert ab.value is None or 0.0 <= ab.value <= 1.0


def test_ranks_average_ties():
    assert dist._ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_matches_the_rank_formula_and_its_exact_p_value():
    # no ties: rho = 1 - 6 sum d^2 / (n (n^2 - 1))
    x, y = [1, 2, 3, 4, 5, 6, 7], [2, 1, 4, 3, 7, 5, 6]
    d2 = sum((a - b) ** 2 for a, b in zip(x, y, strict=True))
    c = dist.spearman(x, y)
    assert c["rho"] == pytest.approx(1 - 6 * d2 / (7 * 48)) and c["n"] == 7
    assert c["p_method"].startswith("exact")
    # a perfect order of 5: only the 2 orderings with |rho| = 1 are as extreme, of 120
    perfect = dist.spearman([0.1, 0.2, 0.3, 0.4, 0.5], [3, 5, 8, 9, 20])
    assert perfect["rho"] == pytest.approx(1.0) and perfect["p"] == pytest.approx(2 / 120)
    anti = dist.spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert anti["rho"] == pytest.approx(-1.0)
    # undefined: too few points, or a constant column
    assert dist.spearman([1, 2], [2, 1])["rho"] is None
    assert dist.spearman([1, 2, 3], [4, 4, 4])["rho"] is None


def test_spearman_permutation_p_value_on_many_languages():
    rng = np.random.default_rng(1)
    x = rng.random(20)
    strong = dist.spearman(x, x + 0.01 * rng.random(20))
    assert strong["rho"] > 0.95 and strong["p"] < 1e-3 and strong["p"] > 0  # (k+1)/(N+1)
    noise = dist.spearman(x, rng.random(20))
    assert 0.01 < noise["p"] <= 1.0
    assert dist.spearman(x, x)["p"] == dist.spearman(x, x)["p"]  # seeded: reproducible


def _paper_json(tmp_path, fed: dict, mono: dict, seeds=None) -> str:
    """A results file shaped like benchmarks/results/<dataset>.json."""

    def row(paradigm, accs):
        langs = {x: {"accuracy": a, "train_examples": 48} for x, a in accs.items()}
        return {"paradigm": paradigm, "method": "prompt-encoder", "seed": 0, "languages": langs}

    data = {"rows": [row("federated", fed), row("monolingual", mono)], "stability": {}}
    if seeds:
        data["stability"] = {
            f"{p}:prompt-encoder": [{"seed": s, "languages": accs} for s, accs in runs]
            for p, runs in seeds.items()
        }
    path = tmp_path / "table.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_gains_are_the_mean_over_seeds_when_a_table_has_them(tmp_path):
    fed, mono = {"en": 0.6, "sw": 0.5}, {"en": 0.7, "sw": 0.3}
    only_rows = dist.read_gains(_paper_json(tmp_path, fed, mono))
    assert only_rows.gain() == pytest.approx({"en": -0.1, "sw": 0.2})
    seeds = {
        "federated": [(0, fed), (1, {"en": 0.8, "sw": 0.7})],
        "monolingual": [(0, mono), (1, {"en": 0.7, "sw": 0.5})],
    }
    g = dist.read_gains(_paper_json(tmp_path, fed, mono, seeds))
    assert g.gain() == pytest.approx({"en": 0.0, "sw": 0.2})
    assert g.seeds == {dist.FEDERATED: [0, 1], dist.MONOLINGUAL: [0, 1]}


def test_a_results_file_without_both_rows_is_refused(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"rows": [{"paradigm": "federated", "method": "lora"}]}))
    with pytest.raises(dist.DistanceAnalysisError, match="no federated:prompt-encoder row"):
        dist.read_gains(path)


@needs_uriel
def test_correlation_on_a_constructed_gain_table_and_missing_languages_are_reported(tmp_path):
    # gains that grow exactly with the mean distance to English, plus one unknown code
    langs = ["eng_Latn", "fra_Latn", "hau_Latn", "zho_Hans", "swh_Latn", "yor_Latn"]
    means = {x: dist._profile(typology.iso639_3(x), "eng")["mean"] for x in langs}
    assert all(m is not None for m in means.values())
    fed = {x: 0.5 + means[x] / 2 for x in langs} | {"qqq_Latn": 0.6}
    mono = {x: 0.5 for x in fed}
    result = dist.analyze(dist.read_gains(_paper_json(tmp_path, fed, mono)))
    c = result["correlations"]["to_english"]["mean"]
    assert c["rho"] == pytest.approx(1.0) and c["n"] == 6 and c["p"] < 0.01
    assert "as claimed" in result["verdict"]
    missing = {m["language"]: m for m in result["missing"]}
    assert "not in URIEL+" in missing["qqq_Latn"]["reason"]
    assert missing["qqq_Latn"]["gain"] == pytest.approx(0.1)
    eng = next(r for r in result["languages"] if r["language"] == "eng_Latn")
    assert eng["to_english"]["mean"] == 0.0
    # the nearest other client is another run language, never the language itself
    for r in result["languages"]:
        assert r["nearest_client"]["mean"]["language"] in set(langs) - {r["language"]}
    md = dist.markdown(result)
    assert "| qqq_Latn | missing: qqq is not in URIEL+" in md
    assert not math.isnan(c["p"])


def test_command_names_the_extra_when_the_database_is_absent(tmp_path, monkeypatch, capsys):
    from fedlingua.cli import main

    fed, mono = {"en": 0.6, "sw": 0.5, "fr": 0.4}, {"en": 0.7, "sw": 0.3, "fr": 0.4}
    source = _paper_json(tmp_path, fed, mono)
    monkeypatch.setattr(typology, "DATABASE", "no_such_typology_package")
    assert main(["analyze", "distance", source]) == 2
    err = capsys.readouterr().err
    assert "fedlingua: error:" in err and "'.[analysis]'" in err


@needs_uriel
def test_analyze_distance_command_on_a_tiny_compare_folder(tmp_path, tiny_backbone, tiny_config):
    from fedlingua.cli import main
    from fedlingua.compare import compare

    cfg = tiny_config(tmp_path, name="cmp", federation__rounds=1)
    cfg.model.name = "tiny"
    compare(cfg, [dist.FEDERATED, dist.MONOLINGUAL], log=lambda _: None)
    folder = tmp_path / "cmp"
    assert main(["analyze", "distance", str(folder), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / dist.JSON).read_text())
    assert {r["language"]: r["code"] for r in result["languages"]} == {
        "fr": "fra",
        "sw": "swa",
        "lg": "lug",
    }
    assert result["correlations"]["to_english"]["mean"]["n"] == 3
    md = (tmp_path / "out" / dist.MD).read_text()
    assert "The paper's claim" in md and "![gain vs mean distance to English](distance.png)" in md
    assert (tmp_path / "out" / dist.PNG).read_bytes()[:4] == b"\x89PNG"
