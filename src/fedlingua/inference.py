"""Use a trained run: load its model(s) without the training data, predict, score elsewhere.

`load(run_dir or export_dir)` rebuilds only what inference needs: the backbone named in
the run's config, the workbench (backbone wrapped by the run's method), the saved
trainable tensors and the label names (`labels.json`; older runs: the label order in
results.json, and only as a last resort the dataset). Which model serves a language is
the run's topology: one model for federated and centralized runs (any language, the
languages it never saw included), one per language for monolingual runs.

Batches are length-sorted and padded per batch exactly as in evaluation
(`fedlingua.data.encode` + `fedlingua.training.eval_logits`), so a run's test rows get
the logits the run itself computed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fedlingua.config import ConfigError, RunConfig
from fedlingua.data import DataError, EncodedSplit, Example, encode, load_dataset
from fedlingua.data.folder import parse_columns
from fedlingua.data.readers import FORMATS, RowPolicy, iter_delimited, iter_jsonl, read_text
from fedlingua.evaluation import scores
from fedlingua.experiment import load_data, text_length
from fedlingua.io import read_json
from fedlingua.models import Backbone, load_backbone
from fedlingua.report import RunDir
from fedlingua.runtime import progress_enabled
from fedlingua.topology import Topology
from fedlingua.training import State, Workbench, build_workbench, eval_logits

LABELS_FILE = "labels.json"
EXPORT_RUN = "fedlingua"  # the export's sub-folder that fedlingua itself reloads
LANG_COLUMNS = ("lang", "language")
_PROGRESS_MIN_ROWS = 512  # fewer rows finish before a bar would be worth drawing


@dataclass
class Classifier:
    """A trained run ready to predict: its models, labels and text budget."""

    cfg: RunConfig
    labels: tuple[str, ...]
    backbone: Backbone
    bench: Workbench
    states: dict[str, State]
    topology: Topology
    max_length: int
    path: Path

    @property
    def batch_size(self) -> int:
        return self.cfg.train.eval_batch_size

    def model_for(self, lang: str | None) -> str:
        """The model serving `lang`; a monolingual run needs the language and a model for it."""
        if self.topology.per_language:
            if lang is None:
                raise ConfigError(
                    f"{self.path} is a monolingual run (one model per language: "
                    f"{', '.join(sorted(self.states))}): give the language (--lang, or a "
                    f"'lang' column in the input)"
                )
            if lang not in self.states:
                raise ConfigError(
                    f"{self.path} has no model for language {lang!r} (monolingual run with "
                    f"models for {', '.join(sorted(self.states))})"
                )
        return self.topology.model_for(lang or "")

    def encode(self, texts: Sequence[str], pairs: Sequence[str | None] | None = None) -> list:
        """Token ids of `texts` as the run encoded its data (prefix, truncation)."""
        rows = [Example(t, 0, "", pairs[i] if pairs else None) for i, t in enumerate(texts)]
        return encode(
            self.backbone.tokenizer,
            rows,
            max_length=self.max_length,
            text_prefix=self.backbone.text_prefix,
        ).input_ids

    def logits(
        self,
        texts: Sequence[str],
        lang: str | None = None,
        *,
        langs: Sequence[str | None] | None = None,
        pairs: Sequence[str | None] | None = None,
        progress: bool | None = False,
    ) -> np.ndarray:
        """fp32 logits (rows x labels) of `texts`, each by the model serving its language
        (`langs` per row, else `lang` for all)."""
        langs = list(langs) if langs is not None else [lang] * len(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        groups: dict[str, list[int]] = {}
        for i, row_lang in enumerate(langs):
            groups.setdefault(self.model_for(row_lang or lang), []).append(i)
        show = progress_enabled(progress) and len(texts) >= _PROGRESS_MIN_ROWS
        bar = tqdm(total=len(texts), desc="predict", unit="text", disable=not show)
        for model, rows in groups.items():
            ids = self.encode([texts[i] for i in rows], [pairs[i] for i in rows] if pairs else None)
            split = EncodedSplit(ids, [0] * len(ids), [""] * len(ids))
            with torch.no_grad():
                for index, batch, _ in eval_logits(
                    self.bench, self.states[model], split, self.batch_size
                ):
                    out[np.asarray(rows)[index]] = batch.numpy()
                    bar.update(len(index))
        bar.close()
        return out

    def predict(
        self,
        texts: str | Sequence[str],
        lang: str | None = None,
        *,
        langs: Sequence[str | None] | None = None,
        top_k: int | None = None,
        progress: bool | None = False,
    ) -> list[dict]:
        """One dict per text: text, lang, label (the argmax) and probabilities per label
        (the `top_k` most probable only, when given)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        langs = list(langs) if langs is not None else [lang] * len(texts)
        rows = [InputRow(t, lang=lg) for t, lg in zip(texts, langs, strict=True)]
        return list(predict_rows(self, rows, top_k=top_k, progress=progress))


def _label_probs(p: np.ndarray, labels: Sequence[str], top_k: int | None) -> dict:
    order = np.argsort(-p, kind="stable")[: top_k or len(labels)]
    return {
        "label": labels[int(order[0])],
        "probabilities": {labels[int(i)]: round(float(p[i]), 6) for i in order},
    }


# ---- loading -------------------------------------------------------------------------------
def load(path: str | Path, *, which: str = "final", backbone: Backbone | None = None) -> Classifier:
    """A run directory (or a `fedlingua export` folder) as a `Classifier`.

    `which`: "final" tensors, or "best" (saved by runs that select on dev).
    `backbone`: an already loaded backbone of the run's model (else loaded by name).
    """
    path = Path(path)
    if not (path / "config.toml").is_file() and (path / EXPORT_RUN / "config.toml").is_file():
        path = path / EXPORT_RUN
    rundir = RunDir(path)
    if not rundir.config_path.is_file():
        raise FileNotFoundError(f"{path} is neither a run directory nor an export (no config.toml)")
    if which not in ("final", "best"):
        raise ConfigError(f"which={which!r}: use 'final' or 'best'")
    if not (path / f"{which}.safetensors").is_file():
        hint = " (best.safetensors needs evaluation.select_on_dev=true)" if which == "best" else ""
        raise FileNotFoundError(f"{path} has no {which}.safetensors: the run is not finished{hint}")
    cfg = RunConfig.load(rundir.config_path)
    labels = run_labels(path, cfg)
    backbone = backbone or load_backbone(cfg.model.name)
    states = rundir.load_states(f"{which}.safetensors")
    return Classifier(
        cfg=cfg,
        labels=labels,
        backbone=backbone,
        bench=build_workbench(backbone, len(labels), cfg),
        states=states,
        topology=Topology(cfg.paradigm, {name: [] for name in states}),
        max_length=text_length(cfg, backbone),
        path=path,
    )


def run_labels(run_dir: str | Path, cfg: RunConfig | None = None) -> tuple[str, ...]:
    """Label names in index order: labels.json, else the order of the per-class recall in
    results.json, else (runs that saved neither) the labels of the run's dataset."""
    run_dir = Path(run_dir)
    if (run_dir / LABELS_FILE).is_file():
        return tuple(read_json(run_dir / LABELS_FILE))
    results = RunDir(run_dir).results() or {}
    for s in results.get("languages", {}).values():
        if s.get("recall"):
            return tuple(s["recall"])

    return load_data(cfg or RunConfig.load(RunDir(run_dir).config_path)).labels


# ---- reading inputs ------------------------------------------------------------------------
@dataclass
class InputRow:
    text: str
    text_pair: str | None = None
    label: str | None = None
    lang: str | None = None


def read_inputs(
    path: str | Path | None,
    *,
    columns: dict[str, str] | None = None,
    quoting: str | None = None,
    stdin: Iterable[str] | None = None,
) -> list[InputRow]:
    """Rows to predict: a .tsv/.csv/.jsonl file read with the run's column mapping (the
    label and a 'lang' column optional), or plain text lines (stdin, or any other file)."""
    if path is None or str(path) == "-":
        lines = list(stdin if stdin is not None else sys.stdin)
    elif Path(path).suffix not in FORMATS:
        lines = read_text(Path(path)).split("\n")
    else:
        lines = None
    if lines is not None:
        return [InputRow(line.rstrip("\r\n")) for line in lines if line.strip()]
    path = Path(path)
    policy = RowPolicy("error")
    if path.suffix == ".jsonl":
        records = (obj for _, obj in iter_jsonl(path, policy=policy))
    else:
        rows = iter_delimited(
            path, delimiter=FORMATS[path.suffix], quoting=quoting or "csv", policy=policy
        )
        records = _records(rows)
    return [_input_row(r, columns, path) for r in records]


def _records(rows: Iterator[tuple[int, list[str]]]) -> Iterator[dict]:
    header = None
    for _, fields in rows:
        if header is None:
            header = [f.strip() for f in fields]
            continue
        yield dict(zip(header, fields, strict=False))


def _input_row(record: dict, columns: dict[str, str] | None, path: Path) -> InputRow:
    fields = parse_columns(columns, list(record))
    missing = [c for c in fields["text"] if c not in record]
    if missing:
        raise DataError(
            f"no text column {missing} (columns: {list(record)})",
            path=str(path),
            hint="name the text column with the run's data.columns (or --columns text=...)",
        )
    pair, label = fields["text_pair"][0], fields["label"][0]
    lang = next((record[c] for c in LANG_COLUMNS if record.get(c)), None)
    return InputRow(
        text=" ".join(str(record[c]) for c in fields["text"]),
        text_pair=str(record[pair]) if pair and record.get(pair) is not None else None,
        label=str(record[label]) if record.get(label) is not None else None,
        lang=str(lang) if lang is not None else None,
    )


def predict_rows(
    clf: Classifier,
    rows: list[InputRow],
    *,
    lang: str | None = None,
    top_k: int | None = None,
    progress: bool | None = None,
) -> Iterator[dict]:
    """JSON-able predictions of `rows` (a row's own language wins over `lang`)."""
    texts = [r.text for r in rows]
    langs = [r.lang or lang for r in rows]
    pairs = [r.text_pair for r in rows] if any(r.text_pair for r in rows) else None
    logits = clf.logits(texts, langs=langs, pairs=pairs, progress=progress)
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    for r, row_lang, p in zip(rows, langs, probs, strict=True):
        out = {"text": r.text, "lang": row_lang, **_label_probs(p, clf.labels, top_k)}
        if r.label is not None:
            out["gold"] = r.label
        yield out


def write_jsonl(records: Iterable[dict], out) -> int:
    n = 0
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        n += 1
    return n


# ---- scoring on other data -----------------------------------------------------------------
def evaluate_on(
    clf: Classifier,
    source: str,
    *,
    languages: list[str] | None = None,
    columns: dict[str, str] | None = None,
    root: str | None = None,
    quoting: str | None = None,
    split: str = "test",
) -> dict[str, dict]:
    """Scores per language of `clf` on another dataset's `split` (languages the run never
    saw included: zero-shot). Labels are matched by name."""
    ds = load_dataset(source, languages=languages, root=root, columns=columns, quoting=quoting)
    unknown = [y for y in ds.labels if y not in clf.labels]
    if unknown:
        raise DataError(
            f"{source} has labels the model does not know: {unknown}",
            hint=f"the model predicts {', '.join(clf.labels)}; map or drop those rows",
        )
    to_model = np.array([clf.labels.index(y) for y in ds.labels], dtype=np.int64)
    out = {}
    for lang in ds.languages():
        rows = ds.split(lang, split)
        if not rows:
            continue
        pairs = [ex.text_pair for ex in rows] if ds.task == "pair" else None
        logits = clf.logits([ex.text for ex in rows], lang, pairs=pairs)
        gold = to_model[[ex.label for ex in rows]]
        out[lang] = scores(logits.argmax(-1), gold, clf.labels)
    return out


def score_lines(per_language: dict[str, dict]) -> list[str]:
    """One line per language: accuracy, macro-F1 and recall per class, in %."""
    lines = []
    for lang, s in per_language.items():
        recall = ", ".join(
            f"{y} {'-' if r is None else f'{100 * r:.0f}'}" for y, r in s.get("recall", {}).items()
        )
        lines.append(
            f"{lang}\tn {s['n']}\taccuracy {100 * s['accuracy']:.1f}\t"
            f"macro-F1 {100 * s['macro_f1']:.1f}" + (f"\trecall: {recall}" if recall else "")
        )
    return lines
