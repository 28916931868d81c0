"""Run configs under random input, through the public API only (`RunConfig.load`,
`RunConfig.from_dict`): every input yields a valid RunConfig or a ConfigError that names
the file (unreadable or invalid TOML) or the field; never a TypeError, OverflowError,
UnicodeDecodeError... from inside the loader."""

from __future__ import annotations

import math
import tempfile
import tomllib
from pathlib import Path

import pytest
from fuzz_helpers import assert_names_file, tried
from hypothesis import given
from hypothesis import strategies as st

from fedlingua.config import ConfigError, RunConfig

DEFAULTS = RunConfig().to_dict()
# Every dotted field name, e.g. "federation.rounds", from the defaults themselves.
FIELDS = sorted(
    [f"{section}.{key}" for section, sub in DEFAULTS.items() if isinstance(sub, dict)
     for key in sub]
    + [key for key, value in DEFAULTS.items() if not isinstance(value, dict)]
)  # fmt: skip

scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)  # past float's range
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["fedavg", "lora", "federated", "1", "true", "a,b", "", "nan", "9" * 5000])
)
value = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _config_or_config_error(make, *names) -> RunConfig | None:
    try:
        return make()
    except ConfigError as err:
        for name in names:
            assert_names_file(err, name)
        return None


@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), value, max_size=6))
def test_random_values_per_field_give_a_config_or_config_error(flat):
    tried("config")
    raw: dict = {}
    for dotted, v in flat.items():
        section, _, key = dotted.rpartition(".")
        (raw.setdefault(section, {}) if section else raw)[key] = v
    cfg = _config_or_config_error(lambda: RunConfig.from_dict(raw).validate())
    if cfg is not None:  # a valid config survives its own TOML
        assert RunConfig.from_dict(cfg.to_dict()) == cfg


@given(
    st.lists(
        st.tuples(st.sampled_from(FIELDS) | st.text(max_size=10), st.text(max_size=20)).map(
            lambda kv: f"{kv[0]}={kv[1]}"
        )
        | st.text(max_size=20),
        max_size=5,
    )
)
def test_random_overrides_give_a_config_or_config_error(overrides):
    tried("config")
    _config_or_config_error(lambda: RunConfig.load(None, overrides))


toml_text = (
    st.binary(max_size=120)
    | st.text(max_size=120).map(str.encode)
    | st.sampled_from(
        [
            "seed = 1\n[federation]\nrounds = 2\n",
            "[data]\nlanguages = ['fr', 'sw']\n",
            "[[data]]\nsource = 'x'\n",
            "seed = 1\nseed = 2\n",
            "[federation]\nfraction = 1e400\n",
            "[privacy]\ndelta = 999999999999999999999999999999\n",
            "seed = " + "9" * 5000 + "\n",
        ]
    ).map(str.encode)
)
encoding_damage = st.sampled_from([None, "latin-1", "utf-16", "bom", "truncate"])


@given(text=toml_text, damage=encoding_damage, overrides=st.lists(st.text(max_size=15), max_size=2))
def test_random_toml_gives_a_config_or_config_error_naming_the_file(text, damage, overrides):
    tried("config")
    if damage in ("latin-1", "utf-16"):
        text = text.decode("utf-8", "replace").encode(damage, "replace") + "é".encode(damage)
    elif damage == "bom":
        text = b"\xef\xbb\xbf" + text
    elif damage == "truncate":
        text = text[: len(text) // 2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.toml"
        path.write_bytes(text)
        try:
            tomllib.loads(text.decode("utf-8"))
            parses = True
        except ValueError:  # undecodable, invalid TOML, or an integer past 4300 digits
            parses = False
        names = () if parses else (str(path),)
        _config_or_config_error(lambda: RunConfig.load(path, overrides), *names)


# ---- regressions (deterministic) ------------------------------------------------------------
def test_non_utf8_config_file_is_a_config_error_naming_it(tmp_path):
    """Was: UnicodeDecodeError from Path.read_text."""
    path = tmp_path / "run.toml"
    path.write_bytes("name = 'café'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8") as info:
        RunConfig.load(path)
    assert str(path) in str(info.value)


def test_config_path_that_is_a_folder_is_a_config_error(tmp_path):
    """Was: IsADirectoryError from Path.read_text."""
    with pytest.raises(ConfigError) as info:
        RunConfig.load(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("raw", ["federation.fraction=1" + "0" * 400, "privacy.delta=" + "9" * 400])
def test_integer_past_float_range_is_a_config_error(raw):
    """Was: OverflowError from float() on a TOML integer too large for a float."""
    with pytest.raises(ConfigError, match=raw.split("=")[0]):
        RunConfig.load(None, [raw])


def test_non_string_key_is_a_config_error():
    """Was: TypeError while formatting the unknown-key message; the error names the key."""
    with pytest.raises(ConfigError, match=r"\[1\].*[Kk]eys should be strings"):
        RunConfig.from_dict({1: 2, "seed": 0})
    assert math.isfinite(RunConfig.from_dict({"seed": 0}).federation.fraction)


def test_integer_of_5000_digits_is_a_config_error(tmp_path):
    """Was: ValueError (Python's int digit limit) escaping tomllib, in a file or an override."""
    with pytest.raises(ConfigError, match="seed must be an integer"):
        RunConfig.load(None, ["seed=" + "9" * 5000])
    path = tmp_path / "run.toml"
    path.write_text("seed = " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        RunConfig.load(path)
    assert str(path) in str(info.value)
