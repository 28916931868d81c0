"""Hugging Face hub source: `hf:<preset>` (the real hub ids) or `hf:<any id>` with columns.

Offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set, or the hub endpoint unreachable) this
fails within about a second with DataUnavailableError, instead of `datasets` retrying for
tens of seconds: the hub is probed first (`runtime.hub_unreachable`, the same probe as for
models), and when it is unreachable only the local cache is tried. Where each preset lives
on the hub is part of its entry in `presets.PRESETS`. `datasets` is the `hub` extra
(pip install 'fedlingua[hub]'), imported only here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fedlingua.runtime import hub_offline_reason, hub_unreachable

from .folder import global_labels, select_languages
from .presets import PRESETS, HubSpec
from .readers import RowPolicy, TableSpec, assemble_read, check_row
from .schema import SPLITS, DataError, DataUnavailableError, MultilingualDataset, RawRow

_SPLIT_NAMES = {"train": ("train",), "dev": ("validation", "dev", "valid"), "test": ("test",)}


@contextlib.contextmanager
def _forced_offline(on: bool) -> Iterator[None]:
    """Make `datasets` use only its cache (its flags are read at import, so set them here)."""
    if not on:
        yield
        return
    import datasets.config
    import huggingface_hub.constants as hub_constants

    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _fetch(hub_id: str, config: str | None):
    """datasets.load_dataset(hub_id, config) -> DatasetDict (the seam tests replace)."""
    import datasets

    return datasets.load_dataset(hub_id, config)


def _unavailable(hub_id: str, config: str | None, offline: str | None, exc: BaseException):
    from huggingface_hub.constants import HF_HOME

    what = f"{hub_id!r}" + (f" (config {config!r})" if config else "")
    cause = f"{type(exc).__name__}: {str(exc)[:300]}"
    if offline:
        cause = f"{offline}, and the local cache ({HF_HOME}) does not have it ({cause})"
    preset = next((n for n, p in PRESETS.items() if p.hub_id == hub_id), None)
    local = (
        f"load_dataset({preset!r}) (the local copy under shared/data)"
        if preset
        else "a local folder of <lang>/<split>.tsv files"
    )
    return DataUnavailableError(
        f"cannot load {what} from the Hugging Face hub: {cause}. "
        f"Use {local}, or the built-in offline dataset load_dataset('cldr')."
    )


def _rows(
    split,
    spec: HubSpec,
    where: str,
    names,
    allowed,
    policy: RowPolicy,
    lang_filter: tuple[str, str] | None = None,
) -> list[RawRow]:
    """Convert one hub split; ClassLabel ints become names, -1 (unlabelled) is a bad row."""
    table = TableSpec(text=spec.text, label=spec.label, text_pair=spec.text_pair)
    missing = [c for c in table.columns() if c not in split.column_names]
    if missing:
        raise DataError(
            f"missing column {missing[0]!r}",
            path=where,
            column=repr(missing[0]),
            hint=f"the split has {split.column_names}; pass columns={{...}}",
        )
    cols = {c: list(split[c]) for c in table.columns()}
    if lang_filter is not None:
        lang_col, lang = lang_filter
        keep = [i for i, v in enumerate(split[lang_col]) if v == lang]
        cols = {c: [values[i] for i in keep] for c, values in cols.items()}
    rows: list[RawRow] = []
    labels = list(cols[spec.label])
    for i, label in enumerate(labels):
        if isinstance(label, int) and names is not None:
            if not 0 <= label < len(names):
                policy.bad(
                    DataError(
                        f"label {label} is not a class (unlabelled row?)",
                        path=where,
                        line=i + 1,
                        column=repr(spec.label),
                        hint="this split has no usable labels",
                    )
                )
                continue
            label = names[label]
        elif isinstance(label, int):
            label = str(label)
        row = check_row(
            where,
            i + 1,
            text=[cols[c][i] for c in spec.text],
            pair=cols[spec.text_pair][i] if spec.text_pair else None,
            label=label,
            spec=table,
            allowed=allowed,
            label_hint="pass label_names",
        )
        if isinstance(row, DataError):
            policy.bad(row)
        else:
            rows.append(row)
    return rows


def load_hub(
    ref: str,
    *,
    languages: list[str] | None = None,
    columns: dict[str, str] | None = None,
    label_names: list[str] | None = None,
    on_bad_rows: str = "error",
) -> MultilingualDataset:
    """`ref` is a preset name (masakhanews, sib200, xnli, xglue_nc) or a hub dataset id.

    For a hub id: `columns` maps text / text_pair / label (and optionally lang, a column
    whose values are language codes) to the dataset's columns; without a lang column each
    entry of `languages` is loaded as a config name; with neither, the language is "und".
    """
    policy = RowPolicy(on_bad_rows)
    spec, lang_col = _spec_for(ref, columns)
    try:
        import datasets  # noqa: F401  (an extra: offline sources work without it)
    except ImportError as exc:
        raise DataUnavailableError(
            "hub loading needs the `datasets` package: pip install 'fedlingua[hub]'"
        ) from exc
    reason = hub_offline_reason("HF_DATASETS_OFFLINE") or hub_unreachable()
    if lang_col:
        jobs = [(None, None)]
    elif spec.config:
        jobs = [(spec.config, None)]
    else:
        jobs = [(cfg, cfg) for cfg in (languages or spec.configs or [None])]
    fetched = {}
    with _forced_offline(reason is not None):
        for config, _ in jobs:
            try:
                fetched[config] = _fetch(spec.hub_id, config)
            except DataError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure here means "not available"
                raise _unavailable(spec.hub_id, config, reason, exc) from exc
    return _assemble_hub(ref, spec, jobs, fetched, languages, lang_col, label_names, policy)


def _spec_for(ref: str, columns: dict[str, str] | None) -> tuple[HubSpec, str | None]:
    if ref in PRESETS and not columns:
        return PRESETS[ref].hub, None
    cols = dict(columns or {})
    unknown = sorted(set(cols) - {"text", "text_pair", "label", "lang"})
    if unknown:
        raise ValueError(f"columns keys must be among text, text_pair, label, lang; got {unknown}")
    hub_id = PRESETS[ref].hub_id if ref in PRESETS else ref
    text = tuple(part.strip() for part in cols.get("text", "text").split("+"))
    spec = HubSpec(hub_id, text, cols.get("label", "label"), text_pair=cols.get("text_pair"))
    return spec, cols.get("lang")


def _assemble_hub(ref, spec, jobs, fetched, languages, lang_col, label_names, policy):
    raw: dict[str, dict[str, list[RawRow]]] = {}
    lang_labels: dict[str, tuple[str, ...]] = {}
    notes: list[str] = [f"from the Hugging Face hub: {spec.hub_id}"]
    for config, lang in jobs:
        dd = fetched[config]
        if lang_col:
            found = sorted({v for split in dd.values() for v in split[lang_col]})
            langs = select_languages(found, languages, f"column {lang_col!r} of {spec.hub_id}")
        elif spec.config:
            langs = languages or list(spec.configs)
        else:
            langs = [lang or "und"]
        for code in langs:
            splits = {}
            for split in SPLITS:
                name = _pick_split(dd, split, spec, code)
                if name is None:
                    notes.append(f"{code}: no {split} split on the hub")
                else:
                    splits[split] = (f"hf:{spec.hub_id}/{config or 'default'}/{name}", dd[name])
            if not splits:
                raise DataError(
                    f"no usable split for language {code!r}",
                    path=f"hf:{spec.hub_id}",
                    hint=f"splits are {list(dd)}",
                )
            lang_filter = (lang_col, code) if lang_col else None
            class_names = label_names or _class_names(splits, spec.label)  # int label -> name
            names = class_names
            raw[code] = {}
            if names is None and "train" in splits:  # string labels: train defines the set
                where, data = splits["train"]
                raw[code]["train"] = _rows(data, spec, where, None, None, policy, lang_filter)
                names = sorted({y for _, _, y in raw[code]["train"]})
            allowed = set(names) if names is not None else None
            for split, (where, data) in splits.items():
                if split not in raw[code]:
                    raw[code][split] = _rows(
                        data, spec, where, class_names, allowed, policy, lang_filter
                    )
            if names is None:
                names = sorted({y for rows in raw[code].values() for _, _, y in rows})
            lang_labels[code] = tuple(names)
    labels = global_labels(lang_labels, label_names)
    task = "pair" if spec.text_pair else "single"
    return assemble_read(f"hf:{ref}", raw, labels, task, notes, policy, lang_labels)


def _pick_split(dd, split: str, spec: HubSpec, lang: str) -> str | None:
    if split == "train" and spec.train_languages is not None and lang not in spec.train_languages:
        return None
    if spec.split_names:
        name = spec.split_names[split].format(lang=lang)
        return name if name in dd else None
    return next((n for n in _SPLIT_NAMES[split] if n in dd), None)


def _class_names(splits: dict, label_col: str) -> list[str] | None:
    for _, data in splits.values():
        feature = data.features.get(label_col)
        if getattr(feature, "names", None):
            return list(feature.names)
    return None
