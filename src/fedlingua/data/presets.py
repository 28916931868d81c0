"""The four preset datasets: their local copies under the shared data root, each read with
its own conventions, and where each lives on the Hugging Face hub (`PRESETS`, one table).

See shared/data/README.md: MasakhaNEWS and SIB-200 use CSV quoting (multi-line fields),
XNLI and XGLUE-NC are plain TSV whose quotes are literal text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
class HubSpec:
    """Where a dataset lives on the hub and how its columns map onto the schema.

    Either one config per language (`configs`, the default language list), or one config
    holding every language with per-language split names (`config` + `split_names`).
    """

    hub_id: str
    text: tuple[str, ...]
    label: str
    text_pair: str | None = None
    configs: tuple[str, ...] = ()
    config: str | None = None
    split_names: dict[str, str] = field(default_factory=dict)  # "{lang}" is substituted
    train_languages: tuple[str, ...] | None = None  # only these have a train split


MASAKHANEWS_LANGS = tuple("amh eng fra hau ibo lin lug orm pcm run sna som swa tir xho yor".split())
# The 30 languages of the local copy (the hub has 205).
SIB200_LANGS = tuple(
    """eng_Latn fra_Latn deu_Latn spa_Latn rus_Cyrl zho_Hans arb_Arab hin_Deva hau_Latn
    yor_Latn ibo_Latn swh_Latn amh_Ethi tir_Ethi som_Latn zul_Latn xho_Latn lin_Latn lug_Latn
    gaz_Latn run_Latn sna_Latn quy_Latn tsn_Latn lao_Laoo mya_Mymr khm_Khmr kaz_Cyrl npi_Deva
    sin_Sinh""".split()
)
XNLI_LANGS = tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split())


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    task: str
    load: Callable[[Path, list[str] | None, RowPolicy, int], MultilingualDataset]
    hub: HubSpec  # the same dataset on the hub (`hf:<name>`)

    @property
    def hub_id(self) -> str:
        return self.hub.hub_id


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


def _assemble(
    name: str, raw: dict, labels: tuple[str, ...], notes: list[str], policy: RowPolicy, **extra
) -> MultilingualDataset:
    """`assemble` with the policy's bad-row notes and counts appended."""
    return assemble(
        name, raw, labels, notes=notes + policy.notes(), skipped=policy.skipped, **extra
    )


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
    return _assemble(
        "masakhanews",
        raw,
        labels,
        notes,
        policy,
        groups={"50-shot": few, "full-train": full},
        lang_labels=lang_labels,
    )


def load_sib200(
    folder: Path, languages: list[str] | None, policy: RowPolicy, seed: int
) -> MultilingualDataset:
    spec = TableSpec(text=("text",), label="category", quoting="csv")
    raw, lang_labels, labels, _ = _labelled_folder(folder, languages, policy, spec, ("train",))
    notes = ["parallel data: row i is the same Flores sentence in every language"]
    return _assemble("sib200", raw, labels, notes, policy, lang_labels=lang_labels)


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
    return _assemble("xnli", raw, XNLI_LABELS, notes, policy, task="pair")


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
    return _assemble("xglue_nc", raw, XGLUE_NC_LABELS, notes, policy)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "masakhanews",
            "MasakhaNEWS news topics, 16 African languages (+en, fr)",
            "single",
            load_masakhanews,
            HubSpec(
                "masakhane/masakhanews", ("headline", "text"), "label", configs=MASAKHANEWS_LANGS
            ),
        ),
        Preset(
            "sib200",
            "SIB-200 topic classification of Flores-200 sentences",
            "single",
            load_sib200,
            HubSpec("Davlan/sib200", ("text",), "category", configs=SIB200_LANGS),
        ),
        Preset(
            "xnli",
            "XNLI natural language inference, 15 languages",
            "pair",
            load_xnli,
            HubSpec(
                "facebook/xnli", ("premise",), "label", text_pair="hypothesis", configs=XNLI_LANGS
            ),
        ),
        Preset(
            "xglue_nc",
            "XGLUE news classification, German 1,000-row subset",
            "single",
            load_xglue_nc,
            HubSpec(
                "microsoft/xglue",
                ("news_title", "news_body"),
                "news_category",
                configs=("en", "de", "es", "fr", "ru"),
                config="nc",
                split_names={"train": "train", "dev": "validation.{lang}", "test": "test.{lang}"},
                train_languages=("en",),
            ),
        ),
    )
}
