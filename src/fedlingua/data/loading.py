"""`load_dataset`: one entry point for every source (built-in, preset, hub, folder)."""

from __future__ import annotations

import os
from pathlib import Path

from .cldr import load_cldr
from .folder import load_folder
from .presets import PRESETS
from .readers import RowPolicy
from .schema import DataUnavailableError, MultilingualDataset

_REPO_ROOT = Path(__file__).resolve().parents[3]


def default_data_root() -> Path | None:
    """$FEDLINGUA_DATA_ROOT, else `<repo root>/../shared/data` if it exists, else None."""
    env = os.environ.get("FEDLINGUA_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    shared = _REPO_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def preset_folder(name: str, root: str | Path | None) -> Path:
    """The folder of preset `name`: `<root>/<name>`, or `root` itself if it is that folder."""
    base = Path(root).expanduser() if root is not None else default_data_root()
    if base is None:
        raise DataUnavailableError(
            f"no data root for preset {name!r}: pass root=..., set $FEDLINGUA_DATA_ROOT, or use "
            "the built-in offline dataset load_dataset('cldr')"
        )
    if (base / name).is_dir():
        return base / name
    if base.name == name and base.is_dir():
        return base
    raise DataUnavailableError(
        f"preset {name!r} not found: no folder {base / name}; pass root= pointing at the data "
        "root (the folder holding masakhanews/, sib200/, ...), set $FEDLINGUA_DATA_ROOT, or use "
        "load_dataset('cldr')"
    )


def load_dataset(
    source: str = "cldr",
    *,
    languages: list[str] | None = None,
    root: str | Path | None = None,
    columns: dict[str, str] | None = None,
    label_names: list[str] | None = None,
    on_bad_rows: str = "error",
    seed: int = 0,
    quoting: str | None = None,
    splits: dict[str, str] | None = None,
) -> MultilingualDataset:
    """Load a multilingual classification dataset.

    source: "cldr" (built-in, offline), a preset ("masakhanews", "sib200", "xnli",
    "xglue_nc"; read from `root` or default_data_root()), "hf:<preset or hub id>", or a
    folder `<root>/<lang>/<split>.{tsv,csv,jsonl}` (see `load_folder` for columns,
    label_names, quoting and splits: the file stem of each split). `seed` fixes the
    splits this package creates (cldr, xnli dev hold-out, xglue_nc). on_bad_rows="skip"
    skips and counts malformed rows.
    """
    RowPolicy(on_bad_rows)  # validate the mode before any work
    if languages is not None and isinstance(languages, str):
        raise TypeError("languages must be a list of codes, e.g. ['hau', 'yor']")
    if source == "cldr" or source in PRESETS:
        options = dict(columns=columns, label_names=label_names, quoting=quoting, splits=splits)
        if extra := [k for k, v in options.items() if v]:
            raise ValueError(f"{', '.join(extra)} apply to folder and hub sources, not {source!r}")
    if source == "cldr":
        return load_cldr(languages, seed=seed)
    if source.startswith("hf:"):
        from .hub import load_hub

        return load_hub(
            source[3:],
            languages=languages,
            columns=columns,
            label_names=label_names,
            on_bad_rows=on_bad_rows,
        )
    if source in PRESETS:
        preset = PRESETS[source]
        folder = preset_folder(source, root)
        return preset.load(folder, languages, RowPolicy(on_bad_rows), seed)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise DataUnavailableError(
            f"unknown source {source!r}: not 'cldr', not a preset ({', '.join(PRESETS)}), not "
            f"'hf:<id>', and no folder {folder}"
        )
    return load_folder(
        folder,
        languages=languages,
        columns=columns,
        label_names=label_names,
        on_bad_rows=on_bad_rows,
        quoting=quoting,
        splits=splits,
    )
