"""Does federation help most the languages far from the high-resource ones?

`fedlingua analyze distance` reads a comparison (a `fedlingua compare` folder's
compare.json, or a paper-table results JSON of benchmarks/results/), takes per language the
gain of the federated prompt-encoder over the monolingual one (with several seeds, the
mean over seeds of each row), and sets it against URIEL+ typological distances
(fedlingua.report.typology): to English, and to the nearest other client language of the
run. Spearman's rank correlation (with its p-value and the number of languages) says
whether the gain grows with the distance; distance.md / distance.json / distance.png hold
the per-language table, the correlations and a labelled scatter plot.

Spearman's rho is the Pearson correlation of the average ranks (ties share their mean
rank). Its two-sided p-value is a permutation test: exact over all orderings for up to 8
languages, otherwise the share of 100,000 seeded random orderings whose |rho| is at least
the observed one ((k + 1) / (N + 1), so never 0). scipy is not a dependency; a permutation
test needs no distributional approximation and handles ties exactly.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedlingua.io import read_json, write_json, write_text
from fedlingua.report import typology
from fedlingua.report.typology import ENGLISH, KINDS, MEAN_OF, DistanceAnalysisError

FEDERATED, MONOLINGUAL = "federated:prompt-encoder", "monolingual:prompt-encoder"
PERMUTATIONS = 100_000
EXACT_UP_TO = 8  # 8! = 40,320 orderings
MD, JSON, PNG = "distance.md", "distance.json", "distance.png"


@dataclass
class Gains:
    """Per-language accuracy of the two rows compared, read from a results file."""

    source: str
    federated: dict[str, float]
    monolingual: dict[str, float]
    seeds: dict[str, list] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # language -> why it has no gain

    def gain(self) -> dict[str, float]:
        return {x: self.federated[x] - self.monolingual[x] for x in self.federated}


def _mean_by_language(runs: list[dict[str, float | None]]) -> dict[str, float]:
    langs = [x for x in runs[0] if all(r.get(x) is not None for r in runs)]
    return {x: statistics.mean(r[x] for r in runs) for x in langs}


def _runs(data: dict, key: str) -> tuple[list[dict], list]:
    """The per-language accuracies of row `key`, one dict per seed, and the seeds."""
    stable = (data.get("stability") or {}).get(key) or []
    if stable:  # a paper table: its stability rows hold every seed (the main one too)
        return [s["languages"] for s in stable], [s.get("seed") for s in stable]
    rows = [r for r in data.get("rows", []) if f"{r.get('paradigm')}:{r.get('method')}" == key]
    runs = [{x: s.get("accuracy") for x, s in r["languages"].items()} for r in rows]
    return runs, [r.get("seed") for r in rows]


def read_gains(source: str | Path) -> Gains:
    """Gains from a compare folder (its compare.json) or a results JSON file."""
    path = Path(source)
    path = path / "compare.json" if path.is_dir() else path
    if not path.is_file():
        raise DistanceAnalysisError(
            f"{source}: neither a compare folder with compare.json nor a results JSON file"
        )
    data = read_json(path)
    found, seeds = {}, {}
    for key in (FEDERATED, MONOLINGUAL):
        runs, seeds[key] = _runs(data, key)
        if not runs:
            raise DistanceAnalysisError(
                f"{path}: no {key} row; the analysis compares {FEDERATED} with {MONOLINGUAL}"
            )
        found[key] = _mean_by_language(runs)
    fed, mono = found[FEDERATED], found[MONOLINGUAL]
    skipped = {x: "no monolingual score" for x in fed if x not in mono}
    skipped |= {x: "no federated score" for x in mono if x not in fed}
    for row in data.get("rows", []):  # zero-shot languages have no monolingual model
        if f"{row.get('paradigm')}:{row.get('method')}" == FEDERATED:
            for x, s in row["languages"].items():
                if s.get("train_examples", 1) == 0:
                    skipped[x] = "zero-shot (no training data, not a client)"
    both = [x for x in fed if x in mono and x not in skipped]
    return Gains(
        str(path),
        {x: fed[x] for x in both},
        {x: mono[x] for x in both},
        seeds,
        skipped,
    )


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Average ranks (1-based): tied values share the mean of their positions."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float], *, seed: int = 0) -> dict:
    """Spearman's rho, its two-sided permutation p-value and n (rho None if undefined)."""
    n = len(x)
    out = {"rho": None, "p": None, "n": n, "p_method": None}
    rx, ry = _ranks(x), _ranks(y)
    if n < 3 or np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return out
    cx, cy = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt(float(cx @ cx) * float(cy @ cy))
    rho = float(cx @ cy) / scale
    if n <= EXACT_UP_TO:
        perms = np.array(list(itertools.permutations(cy)))
        method = f"exact over all {len(perms)} orderings"
    else:
        rng = np.random.default_rng(seed)
        perms = rng.permuted(np.tile(cy, (PERMUTATIONS, 1)), axis=1)
        method = f"{PERMUTATIONS} random orderings (seed {seed})"
    extreme = int((np.abs(perms @ cx / scale) >= abs(rho) - 1e-12).sum())
    p = extreme / len(perms) if n <= EXACT_UP_TO else (extreme + 1) / (len(perms) + 1)
    return out | {"rho": rho, "p": min(1.0, p), "p_method": method}


def _entry(d: typology.Distance) -> dict:
    return {"distance": d.value, "shared_features": d.shared, "usable": d.usable}


def _mean(entries: dict[str, dict]) -> float | None:
    """The mean of the syntactic, genetic and geographic distances, if all three are usable."""
    if not all(entries[k]["usable"] for k in MEAN_OF):
        return None
    return round(statistics.mean(entries[k]["distance"] for k in MEAN_OF), 4)


def _profile(code: str, other: str) -> dict:
    entries = {k: _entry(typology.distance(k, code, other)) for k in KINDS}
    return entries | {"mean": _mean(entries)}


def _nearest(profiles: dict[str, dict]) -> dict:
    """Per kind (and the mean), the other client language at the smallest usable distance."""
    out = {}
    for kind in (*KINDS, "mean"):
        pick = None
        for lang, prof in profiles.items():
            value = prof["mean"] if kind == "mean" else prof[kind]["distance"]
            usable = kind == "mean" or prof[kind]["usable"]
            if value is not None and usable and (pick is None or value < pick["distance"]):
                pick = {"language": lang, "distance": value}
                if kind != "mean":
                    pick["shared_features"] = prof[kind]["shared_features"]
        out[kind] = pick
    return out


def _codes(languages: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """ISO 639-3 codes the database knows, and the languages it lacks (with why)."""
    codes, missing = {}, {}
    for lang in languages:
        code = typology.iso639_3(lang)
        if code is None:
            missing[lang] = "no ISO 639-3 code for this language code"
        elif not typology.has_language(code):
            missing[lang] = f"{code} is not in URIEL+"
        else:
            codes[lang] = code
    return codes, missing


def _correlations(languages: list[dict], target: str) -> dict:
    out = {}
    for kind in ("mean", *KINDS):
        pts = []
        for row in languages:
            d = row[target][kind]
            if target == "to_english":
                value = d if kind == "mean" else (d["distance"] if d["usable"] else None)
            else:
                value = d["distance"] if d else None
            if value is not None:
                pts.append((value, row["gain"]))
        out[kind] = spearman([p[0] for p in pts], [p[1] for p in pts])
    return out


def analyze(gains: Gains) -> dict:
    """Per language: gain, distances to English and to the nearest other client; correlations."""
    typology.check_installed()
    codes, missing = _codes(list(gains.federated))
    gain = gains.gain()
    rows = []
    for lang, code in codes.items():
        others = {x: _profile(code, c) for x, c in codes.items() if x != lang}
        rows.append(
            {
                "language": lang,
                "code": code,
                "monolingual": gains.monolingual[lang],
                "federated": gains.federated[lang],
                "gain": gain[lang],
                "to_english": _profile(code, ENGLISH),
                "nearest_client": _nearest(others),
            }
        )
    rows.sort(key=lambda r: -r["gain"])
    result = {
        "source": gains.source,
        "rows": {"federated": FEDERATED, "monolingual": MONOLINGUAL},
        "seeds": gains.seeds,
        "database": f"{typology.DATABASE} {importlib.metadata.version(typology.DATABASE)}",
        "distance": "URIEL+ angular distance over the features both languages have observed "
        f"values for; mean = mean of {', '.join(MEAN_OF)}; a distance from fewer than "
        f"{typology.MIN_SHARED} shared features is not used",
        "languages": rows,
        "missing": [
            {"language": x, "reason": why, "gain": gain.get(x)}
            for x, why in (missing | gains.skipped).items()
        ],
        "correlations": {t: _correlations(rows, t) for t in ("to_english", "nearest_client")},
        # a control: a small gain may just mean local training was already good
        "gain_vs_monolingual_accuracy": spearman(
            [r["monolingual"] for r in rows], [r["gain"] for r in rows]
        ),
    }
    return result | {"verdict": verdict(result["correlations"]["to_english"]["mean"])}


def summary(c: dict) -> str:
    """One correlation in words: `rho = +0.26, p = 0.351, n = 15`."""
    if c["rho"] is None:
        return f"rho undefined (n = {c['n']})"
    p = "p < 0.001" if c["p"] < 0.001 else f"p = {c['p']:.3f}"
    return f"rho = {c['rho']:+.2f}, {p}, n = {c['n']}"


def verdict(c: dict) -> str:
    """The claim tested, and what the correlation with the mean distance to English says."""
    claim = (
        "The paper's claim: the federated gain is largest for languages far from the "
        "high-resource ones (here: larger gain at larger mean URIEL+ distance to English)."
    )
    if c["rho"] is None:
        return f"{claim} Not testable here: fewer than 3 languages, or a constant column."
    stat = f"Spearman's {summary(c)}"
    if c["p"] >= 0.05:
        said = "no monotone relation significant at the 5% level; the claim is not supported"
    elif c["rho"] > 0:
        said = "the gain grows with the distance to English, as claimed"
    else:
        said = "the gain shrinks as the distance to English grows, the opposite of the claim"
    return f"{claim} Result: {stat}: {said}."


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def _cell(entry: dict) -> str:
    """A distance; in parentheses (not used) when too few features back it."""
    if entry["distance"] is None:
        return "-"
    text = f"{entry['distance']:.2f}"
    return text if entry["usable"] else f"({text})"


def _correlation_lines(result: dict) -> list[str]:
    c = result["correlations"]
    lines = [
        "| distance | to English: rho | p | n | to nearest other client: rho | p | n |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in ("mean", *KINDS):
        label = f"mean ({' + '.join(MEAN_OF)})" if kind == "mean" else kind
        cells = [
            f"{_num(x['rho'], '+.2f')} | {_num(x['p'], '.3f')} | {x['n']}"
            for x in (c["to_english"][kind], c["nearest_client"][kind])
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    methods = {x["p_method"] for t in c.values() for x in t.values() if x["p_method"]}
    other = [
        f"{kind} distance {'to English' if target == 'to_english' else 'to the nearest client'}"
        f" ({summary(x)})"
        for target, table in c.items()
        for kind, x in table.items()
        if x["p"] is not None and x["p"] < 0.05 and (target, kind) != ("to_english", "mean")
    ]
    lines += [
        "",
        "Other correlations with p < 0.05 (exploratory): " + ("; ".join(other) or "none") + ".",
        "",
        "Control: the gain against the monolingual accuracy itself: "
        f"{summary(result['gain_vs_monolingual_accuracy'])}. Negative: the gain is largest "
        "where local training is weakest (noise in the monolingual score alone pushes it "
        "negative too); a distance correlation may partly run through that.",
        "",
        "p: two-sided permutation test (" + "; ".join(sorted(methods) or ["none"]) + "), "
        f"not corrected for the {2 * (len(KINDS) + 1)} correlations shown; the test fixed "
        "in advance is the first row's to-English correlation.",
    ]
    return lines


def _language_lines(result: dict) -> list[str]:
    lines = [
        "| language | ISO 639-3 | monolingual | federated | gain (points) | "
        + " | ".join(f"{k[:3]}. to eng" for k in MEAN_OF)
        + " | mean to eng | nearest client (mean) | its distance |",
        "|---|---|---:|---:|---:|" + "---:|" * len(MEAN_OF) + "---:|---|---:|",
    ]
    for r in result["languages"]:
        near = r["nearest_client"]["mean"] or {}
        lines.append(
            f"| {r['language']} | {r['code']} | {100 * r['monolingual']:.1f} | "
            f"{100 * r['federated']:.1f} | {100 * r['gain']:+.1f} | "
            + " | ".join(_cell(r["to_english"][k]) for k in MEAN_OF)
            + f" | {_num(r['to_english']['mean'])} | {near.get('language', '-')} | "
            f"{_num(near.get('distance'))} |"
        )
    for m in result["missing"]:
        gain = "-" if m["gain"] is None else f"{100 * m['gain']:+.1f}"
        lines.append(f"| {m['language']} | missing: {m['reason']} | | | {gain} |")
    return lines


def markdown(
    result: dict,
    *,
    title: str = "Language distance and the federated gain",
    level: int = 1,
    image: str | None = PNG,
) -> str:
    """distance.md's text; `level` sets the heading depth (for embedding in a larger file)."""
    h = "#" * level
    seeds = "; ".join(f"{k} seeds {v}" for k, v in result["seeds"].items())
    lines = [
        f"{h} {title}",
        "",
        f"Read: `{result['source']}` ({seeds}). Gain = federated prompt-encoder accuracy "
        "minus monolingual prompt-encoder accuracy per language (mean over seeds).",
        "",
        f"Distances: {result['database']}; {result['distance']} (shown in parentheses).",
        "",
        result["verdict"],
        "",
        f"{h}# Spearman correlation of the gain with each distance",
        "",
        *_correlation_lines(result),
        "",
        f"{h}# Per language (by gain)",
        "",
        *_language_lines(result),
        "",
    ]
    if image:
        lines += [f"![gain vs mean distance to English]({image})", ""]
    return "\n".join(lines)


def write(result: dict, out: str | Path) -> list[Path]:
    """distance.md, distance.json and distance.png in `out`."""
    from fedlingua.report.plots import distance_figure, save

    out = Path(out)
    paths = [write_json(out / JSON, result), write_text(out / MD, markdown(result))]
    return paths + [save(distance_figure([("", result)]), out / PNG)]
