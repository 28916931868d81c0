"""Folder sources: a split read from another file (`data.splits`), quoting from the config,
and `data inspect` with a column mapping or a run config's [data] section."""

from __future__ import annotations

import pytest

from fedlingua.cli import main
from fedlingua.config import ConfigError, RunConfig
from fedlingua.data import load_dataset

ROWS = {
    "dev": ["headline\ttopic", "Euro\tcurrency", '"Quoted\tlanguage', "Latin\tscript"],
    "test": ["headline\ttopic", "Dollar\tcurrency", "Kiswahili\tlanguage"],
}


def _folder(root):
    for lang in ("fr", "sw"):
        (root / lang).mkdir(parents=True)
        for split, rows in ROWS.items():
            (root / lang / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_a_shared_split_file_is_read_for_both_splits_with_a_warning(tmp_path):
    root = _folder(tmp_path / "d")
    with pytest.warns(UserWarning, match="dev scores on training data"):
        ds = load_dataset(
            str(root),
            columns={"text": "headline", "label": "topic"},
            quoting="none",
            splits={"train": "dev", "dev": "dev", "test": "test"},
        )
    assert ds.sizes()["fr"] == {"train": 3, "dev": 3, "test": 2}
    assert ds.split("fr", "train")[1].text == '"Quoted'
    assert any("read the same file 'dev'" in note for note in ds.notes)


def test_without_a_mapping_a_missing_train_file_names_the_stem(tmp_path):
    from fedlingua.data import DataError

    root = _folder(tmp_path / "d")
    with pytest.raises(DataError, match="no 'train' split"):
        load_dataset(str(root), columns={"text": "headline", "label": "topic"}, quoting="none")


def test_config_splits_and_quoting_reach_the_folder_reader(tmp_path):
    from fedlingua.experiment import load_data

    root = _folder(tmp_path / "d")
    cfg = RunConfig.load(
        overrides=[
            f"data.source={root}",
            "data.columns={text = 'headline', label = 'topic'}",
            "data.splits={train = 'dev', dev = 'dev', test = 'test'}",
            "data.quoting=none",
        ]
    )
    with pytest.warns(UserWarning):
        ds = load_data(cfg)
    assert ds.split("sw", "dev")[1].text == '"Quoted'


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.splits={train = 'dev', valid = 'dev'}", "unknown splits \\['valid'\\]"),
        ("data.splits={train = ''}", "file stem"),
        ("data.quoting=tabs", "data.quoting='tabs'"),
    ],
)
def test_config_rejects_bad_splits_and_quoting(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.load(overrides=[f"data.source={tmp_path}", override])


def test_config_refuses_splits_for_the_builtin_source():
    with pytest.raises(ConfigError, match="applies to folder sources"):
        RunConfig.load(overrides=["data.quoting=none"])


def test_data_inspect_takes_columns_or_a_run_configs_data_section(tmp_path, capsys):
    root = _folder(tmp_path / "d")
    argv = ["data", "inspect", str(root), "--columns", "text=headline,label=topic"]
    argv += ["--quoting", "none", "--splits", "train=dev,dev=dev,test=test"]
    with pytest.warns(UserWarning):
        assert main(argv) == 0
    first = capsys.readouterr().out
    assert "2 languages, 3 labels" in first
    config = tmp_path / "run.toml"
    config.write_text(
        f"[data]\nsource = '{root}'\nquoting = 'none'\n"
        "columns = {text = 'headline', label = 'topic'}\n"
        "splits = {train = 'dev', dev = 'dev', test = 'test'}\n",
        encoding="utf-8",
    )
    with pytest.warns(UserWarning):
        assert main(["data", "inspect", "--config", str(config)]) == 0
    assert capsys.readouterr().out == first
    assert main(["data", "inspect", str(root), "--columns", "text"]) == 2
    assert "key=value" in capsys.readouterr().err
