"""The four local datasets under the shared data root, each read with its own conventions.

See shared/data/README.md: MasakhaNEWS and SIB-200 use CSV quoting (multi-line fields),
XNLI and XGLUE-NC are plain TSV whose quotes are literal text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .folder import (
    find_split_file,
    global_labels,
    missing_split_error,
    read_labels_file,
    read_language,
    select_languages,
)
from .readers import RowPolicy, TableSpec, read_rows
from .sampling import rng_for, stratified_split
from .schema import DataError, MultilingualDataset, RawRow, assemble

XNLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
XGLUE_NC_LABELS: tuple[str, ...] = tuple(
    "news sports entertainment finance lifestyle autos video health travel foodanddrink".split()
)
XNLI_DEV_HOLDOUT = 0.1  # share of XNLI dev premise groups kept as our dev split
XGLUE_NC_FRACTIONS = (0.6, 0.2, 0.2)  # train / dev / test, stratified


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    task: str
    hub_id: str
    load: Callable[[Path, list[str] | None, RowPolicy, int], MultilingualDataset]


def _lang_dirs(folder: Path) -> list[str]:
    return [d.name for d in folder.iterdir() if d.is_dir()]


def _labels_of(lang_dir: Path) -> tuple[str, ...]:
    path = lang_dir / "labels.txt"
    if not path.is_file():
        raise DataError(
            "missing labels.txt", path=str(path), hint="restore the file (one label per line)"
        )
    return read_labels_file(path)


def _require(lang_dir: Path, split: str, stems: tuple[str, ...] | None = None) -> Path:
    path = find_split_file(lang_dir, split, stems)
    if path is None:
        raise missing_split_error(lang_dir, split, stems)
    return path


def _labelled_folder(
    folder: Path,
    languages: list[str] | None,
    policy: RowPolicy,
    spec: TableSpec,
    train_stems: tuple[str, ...],
) -> tuple[dict, dict, tuple[str, ...], dict[str, str]]:
    """Read <lang>/{train,dev,test} validated against each language's labels.txt.

    The global label set is the union over every language folder present (not only the
    selected ones), so label indices do not change with the language selection.
    """
    all_langs = sorted(_lang_dirs(folder))
    every = {lang: _labels_of(folder / lang) for lang in all_langs}
    raw, lang_labels, train_stem = {}, {}, {}
    for lang in select_languages(all_langs, languages, str(folder)):
        lang_dir = folder / lang
        files = {
            "train": _require(lang_dir, "train", train_stems),
            "dev": _require(lang_dir, "dev"),
            "test": _require(lang_dir, "test"),
        }
        train_stem[lang] = files["train"].stem
        raw[lang], lang_labels[lang] = read_language(
            files, lambda _p: spec, allowed=every[lang], policy=policy
        )
    return raw, lang_labels, global_labels(every, None), train_stem


def load_masakhanews(
    folder: Path, languages: list[str] | None, policy: RowPolicy, seed: int
) -> MultilingualDataset:
    spec = TableSpec(text=("headline", "text"), label="category", quoting="csv")
    raw, lang_labels, labels, stems = _labelled_folder(
        folder, languages, policy, spec, ("train", "train_50shot")
    )
    few = [lang for lang, stem in stems.items() if stem == "train_50shot"]
    full = [lang for lang in stems if lang not in few]
    notes = [
        "text = headline + ' ' + body text",
        "labels: union of every language's labels.txt; each row is checked against its own "
        "language's labels.txt (lang_labels)",
    ]
    if few:
        notes.append(
            f"50-shot train (train_50shot.tsv, 50 per label sampled from the official train; "
            f"full train files not available): {', '.join(few)}"
        )
    return assemble(
        "masakhanews",
        raw,
        labels,
        notes=notes + policy.notes(),
        skipped=policy.skipped,
        groups={"50-shot": few, "full-train": full},
        lang_labels=lang_labels,
    )


def load_sib200(
    folder: Path, languages: list[str] | None, policy: RowPolicy, seed: int
) -> MultilingualDataset:
    spec = TableSpec(text=("text",), label="category", quoting="csv")
    raw, lang_labels, labels, _ = _labelled_folder(folder, languages, policy, spec, ("train",))
    notes = ["parallel data: row i is the same Flores sentence in every language"]
    return assemble(
        "sib200",
        raw,
        labels,
        notes=notes + policy.notes(),
        skipped=policy.skipped,
        lang_labels=lang_labels,
    )


def _premise_groups(rows: list[RawRow]) -> list[list[int]]:
    """Runs of consecutive rows sharing a premise (XNLI: one hypothesis per label)."""
    groups: list[list[int]] = []
    for i, (premise, _, _) in enumerate(rows):
        if groups and rows[groups[-1][0]][0] == premise:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def load_xnli(
    folder: Path, languages: list[str] | None, policy: RowPolicy, seed: int
) -> MultilingualDataset:
    spec = TableSpec(
        text=("0",), text_pair="1", label="2", header=False, quoting="none", n_fields=3
    )
    raw: dict[str, dict[str, list[RawRow]]] = {}
    for lang in select_languages(_lang_dirs(folder), languages, str(folder)):
        lang_dir = folder / lang
        rows = {
            s: read_rows(_require(lang_dir, s), spec, allowed=XNLI_LABELS, policy=policy)
            for s in ("dev", "test")
        }
        groups = _premise_groups(rows["dev"])
        # Same seed string for every language: parallel rows are held out together, so no
        # translation of a dev premise sits in another language's train.
        held = set(
            rng_for("xnli-dev", seed).sample(
                range(len(groups)), round(XNLI_DEV_HOLDOUT * len(groups))
            )
        )
        split = {"train": [], "dev": [], "test": rows["test"]}
        for g, members in enumerate(groups):
            split["dev" if g in held else "train"].extend(rows["dev"][i] for i in members)
        raw[lang] = split
    n = {s: len(next(iter(raw.values()))[s]) for s in ("train", "dev", "test")} if raw else {}
    notes = [
        "xnli has no train split: the official dev serves as train",
        f"dev = {XNLI_DEV_HOLDOUT:.0%} of the official dev's premise groups (3 rows each), "
        f"held out with seed {seed}, the same groups in every language "
        f"(per language: train {n.get('train')}, dev {n.get('dev')}, test {n.get('test')})",
        "test = the official test; parallel data across languages",
    ]
    return assemble(
        "xnli", raw, XNLI_LABELS, task="pair", notes=notes + policy.notes(), skipped=policy.skipped
    )


def load_xglue_nc(
    folder: Path, languages: list[str] | None, policy: RowPolicy, seed: int
) -> MultilingualDataset:
    spec = TableSpec(text=("0", "1"), label="2", header=False, quoting="none", n_fields=3)
    found = [d for d in _lang_dirs(folder) if (folder / d / "dev_subset.tsv").is_file()]
    raw: dict[str, dict[str, list[RawRow]]] = {}
    notes = ["text = news title + ' ' + news body"]
    for lang in select_languages(found, languages, str(folder)):
        rows = read_rows(
            folder / lang / "dev_subset.tsv", spec, allowed=XGLUE_NC_LABELS, policy=policy
        )
        parts = stratified_split(
            [y for _, _, y in rows], XGLUE_NC_FRACTIONS, rng_for("xglue_nc", seed, lang)
        )
        raw[lang] = {
            s: [rows[i] for i in p] for s, p in zip(("train", "dev", "test"), parts, strict=True)
        }
        sizes = {s: len(v) for s, v in raw[lang].items()}
        notes.append(
            f"{lang}: only a {len(rows)}-row subset exists (dev_subset.tsv); split stratified "
            f"60/20/20 with seed {seed}: train {sizes['train']}, dev {sizes['dev']}, "
            f"test {sizes['test']}"
        )
    return assemble(
        "xglue_nc", raw, XGLUE_NC_LABELS, notes=notes + policy.notes(), skipped=policy.skipped
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "masakhanews",
            "MasakhaNEWS news topics, 16 African languages (+en, fr)",
            "single",
            "masakhane/masakhanews",
            load_masakhanews,
        ),
        Preset(
            "sib200",
            "SIB-200 topic classification of Flores-200 sentences",
            "single",
            "Davlan/sib200",
            load_sib200,
        ),
        Preset(
            "xnli",
            "XNLI natural language inference, 15 languages",
            "pair",
            "facebook/xnli",
            load_xnli,
        ),
        Preset(
            "xglue_nc",
            "XGLUE news classification, German 1,000-row subset",
            "single",
            "microsoft/xglue",
            load_xglue_nc,
        ),
    )
}
