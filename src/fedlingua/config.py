"""The run schema: one dataclass tree describes a run; it loads from TOML and dotted overrides.

Choices are `Literal[...]` types and every leaf has a strict type, so pydantic checks a
loaded (or edited) config against the schema itself; `RunConfig.validate()` adds the rules
that tie fields together (ranges, DP needs a federation, SecAgg+ limits...). Every failure
is a `ConfigError` that names the dotted key and says what to change.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BeforeValidator, ConfigDict, Strict, TypeAdapter, ValidationError, with_config

Paradigm = Literal["federated", "monolingual", "centralized"]
MethodName = Literal["prompt-encoder", "soft-prompt", "lora", "full"]
Strategy = Literal[
    "fedavg",
    "fedprox",
    "fedavgm",
    "fedadam",
    "fedyogi",
    "scaffold",
    "fedmedian",
    "fedtrimmedavg",
]
Precision = Literal["auto", "fp32", "fp32-onednn", "bf16"]
DpMode = Literal["none", "central-fixed", "central-adaptive", "local"]
AveragingStrategy = Literal["fedavg", "fedprox"]  # client-level DP is calibrated to an average

PARADIGMS: tuple[str, ...] = typing.get_args(Paradigm)
METHODS: tuple[str, ...] = typing.get_args(MethodName)
STRATEGIES: tuple[str, ...] = typing.get_args(Strategy)
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
DP_MODES: tuple[str, ...] = typing.get_args(DpMode)
DP_STRATEGIES: tuple[str, ...] = typing.get_args(AveragingStrategy)


class ConfigError(ValueError):
    """A run configuration that cannot work; the message says what to change."""


def _true_false_word(value: Any) -> Any:
    """`progress=True` is not TOML, so it arrives as a string; take 'true'/'false' in any case."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _comma_list(value: Any) -> Any:
    """`data.languages=fr,sw` is not TOML either; a comma-separated string is a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _string_table(value: Any) -> Any:
    """Column maps may name columns by number (`label = 2`): keys and values become text."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return value


# Strict leaves: TOML is typed, so "3" is not an int, 1.0 is not an int and true is not a
# number (an int is a float, though). Pydantic's lax mode would silently convert all three.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Text = Annotated[str, Strict()]
Flag = Annotated[bool, BeforeValidator(_true_false_word), Strict()]
Names = Annotated[list[Text], BeforeValidator(_comma_list)]
Table = Annotated[dict[str, str], BeforeValidator(_string_table)]


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


# An unknown key is an error: a typo must not silently run the default.
_closed = with_config(ConfigDict(extra="forbid"))


@_closed
@dataclass
class DataConfig:
    source: Text = _help("'cldr' (offline), a preset name, 'hf:<id>' or a data folder", "cldr")
    root: Text | None = _help("data root for presets (default: $FEDLINGUA_DATA_ROOT)", None)
    languages: Names | None = _help("languages that get clients (default: all)", None)
    eval_languages: Names | None = _help("languages evaluated (default: clients + zero-shot)", None)
    zero_shot_languages: Names = _help("languages evaluated without any client", factory=list)
    low_resource: Names = _help("languages averaged as the low-resource group", factory=list)
    labels: Names | None = _help(
        "the run's label names in order (default: the union of what the sites report at the "
        "roll call); a site with a label outside this list is refused",
        None,
    )
    columns: Table | None = _help("folder sources: schema field -> file column", None)
    clients_per_language: Int = _help("clients per language", 1)
    partition: Literal["iid", "dirichlet"] = _help("split of a language across its clients", "iid")
    alpha: Float = _help("Dirichlet concentration for label skew", 0.5)
    few_shot: Int | None = _help("k training examples per class per language", None)
    max_train_per_client: Int | None = _help("cap on training examples per client", None)
    max_eval_per_language: Int | None = _help("cap on dev/test examples per language", None)
    max_dev_per_language: Int | None = _help(
        "cap on dev examples per language (default: max_eval_per_language); dev is scored "
        "every evaluation, test once per selected model",
        None,
    )
    max_length: Int = _help("maximum text tokens (virtual prompt tokens come on top)", 128)
    on_bad_rows: Literal["error", "skip"] = _help("what a malformed data row does", "error")
    splits: Table | None = _help(
        "folder sources: split -> file stem, e.g. {train = 'dev', dev = 'dev', test = 'test'}",
        None,
    )
    quoting: Literal["csv", "none"] | None = _help(
        "folder sources: 'csv' (quote-aware, default) or 'none' (split each line)", None
    )


@_closed
@dataclass
class ModelConfig:
    name: Text = _help("'e5-small' (offline default), a hub id or a local folder", "e5-small")
    precision: Precision = _help("arithmetic of the frozen backbone", "fp32-onednn")
    dropout: Float = _help("dropout before the classification head", 0.1)
    device: Text = _help("where it computes: auto (CUDA when available), cpu, cuda[:N]", "auto")


@_closed
@dataclass
class MethodConfig:
    name: MethodName = _help("the parameter-efficient method", "prompt-encoder")
    num_virtual_tokens: Int = _help("virtual tokens (prompt methods)", 20)
    reparameterization: Literal["mlp", "lstm"] = _help("prompt-encoder reparameterization", "mlp")
    encoder_hidden_size: Int = _help("hidden size of the prompt encoder", 128)
    lora_r: Int = _help("LoRA rank", 8)
    lora_alpha: Int = _help("LoRA alpha", 16)
    lora_dropout: Float = _help("LoRA dropout", 0.0)
    lora_target_modules: Names = _help("LoRA target modules", factory=lambda: ["query", "value"])
    freeze_word_embeddings: Flag = _help("full fine-tuning: keep word embeddings frozen", True)


@_closed
@dataclass
class TrainConfig:
    lr: Float | None = _help("learning rate (default: the method's own default)", None)
    batch_size: Int = _help("training batch size", 16)
    eval_batch_size: Int = _help("evaluation batch size", 64)
    local_epochs: Int = _help("passes over a client's data per round", 1)
    local_steps: Int | None = _help("optimizer steps per round instead of epochs", None)
    weight_decay: Float = _help("weight decay of the client optimizer", 0.0)
    max_grad_norm: Float = _help("gradient clipping (0 disables)", 1.0)
    optimizer: Literal["adamw", "sgd"] = _help("client optimizer (sgd: with momentum)", "adamw")
    keep_optimizer_state: Flag = _help(
        "clients keep their optimizer state from round to round (cross-silo: the same "
        "organisations every round); false: a fresh optimizer every round",
        False,
    )
    momentum: Float = _help("SGD momentum", 0.9)
    logit_adjustment: Float = _help(
        "tau: client loss on logits + tau * log(client label prior); 0 = plain cross-entropy "
        "(default 0.5: chosen on dev, benchmarks/results/recipe_sweep_*.md)",
        0.5,
    )


@_closed
@dataclass
class FederationConfig:
    rounds: Int = _help("rounds (for monolingual/centralized: blocks of local_epochs)", 5)
    fraction: Float = _help("fraction of clients sampled each round, in (0, 1]", 1.0)
    strategy: Strategy = _help(
        "the server's aggregation strategy (default fedadam: chosen on dev, "
        "benchmarks/results/recipe_sweep_*.md; DP and SecAgg+ need fedavg)",
        "fedadam",
    )
    proximal_mu: Float = _help("FedProx mu", 0.01)
    server_lr: Float | None = _help(
        "server step of fedavgm / fedadam / fedyogi / scaffold (default: fedavgm, scaffold 1.0; "
        "fedadam 10x and fedyogi 1x the clients' learning rate, see "
        "fedlingua.federation.strategies)",
        None,
    )
    server_momentum: Float = _help("FedAvgM server momentum", 0.9)
    trim_beta: Float = _help("FedTrimmedAvg fraction cut from each end", 0.2)
    client_dropout: Float = _help("probability a selected client fails in a round", 0.0)
    min_clients: Int = _help("quorum of clients and of valid replies (else the round skips)", 1)
    round_timeout: Float | None = _help("seconds to wait for a round's replies (Flower)", None)
    fuse_clients: Int = _help(
        "in-process simulation: K sampled clients train together, one backbone pass (1 = off)", 1
    )


@_closed
@dataclass
class PrivacyConfig:
    dp: DpMode = _help("client-level differential privacy: server or client noise", "none")
    epsilon: Float | None = _help("target epsilon of the whole run (calibrates the noise)", None)
    noise_multiplier: Float | None = _help("noise std / clipping norm (instead of epsilon)", None)
    delta: Float = _help("delta of the reported (epsilon, delta)", 1e-5)
    clipping_norm: Float = _help("L2 bound on a client's update (adaptive: the first)", 1.0)
    clipping: Literal["server", "client"] = _help("central modes: who clips updates", "server")
    target_clipped_quantile: Float = _help("central-adaptive: quantile of updates clipped", 0.5)
    clip_norm_lr: Float = _help("central-adaptive: learning rate of the clipping norm", 0.2)
    clipped_count_stddev: Float | None = _help("central-adaptive: clipped-count noise", None)
    seeded_noise: Flag = _help(
        "DP noise from the run seed, in-process only (anyone with the config can recompute "
        "it: no epsilon is reported); default: OS entropy",
        False,
    )
    secure_aggregation: Flag = _help("SecAgg+: the server sees only the sum of updates", False)
    secagg_num_shares: Float = _help("SecAgg+: key shares per client (or a fraction)", 1.0)
    secagg_threshold: Float = _help("SecAgg+: shares that rebuild a key (or a fraction)", 0.67)
    secagg_clipping_range: Float = _help("SecAgg+: clip to [-r, r] before quantizing", 8.0)
    secagg_max_weight: Float = _help("SecAgg+: largest example count one client weighs", 1000.0)
    secagg_timeout: Float | None = _help("SecAgg+: seconds to wait for each stage", None)


@_closed
@dataclass
class EvalConfig:
    every: Int = _help("evaluate every k rounds (the last round always)", 1)
    select_on_dev: Flag = _help("report the round with the best dev accuracy", False)
    matrix: Flag = _help("monolingual: evaluate every language model on every language", False)
    patience: Int | None = _help(
        "early stopping: a model stops after this many evaluations without a better dev "
        "accuracy (needs select_on_dev; federation.rounds is then a maximum)",
        None,
    )
    min_rounds: Int = _help(
        "early stopping: no model stops before this round (a slow start is not a plateau)", 0
    )
    personalize: Int = _help(
        "local steps each client fine-tunes the final model for, scored apart (0 = off)", 0
    )
    language_prior: Flag = _help(
        "also score with each language's training label prior added to the logits", False
    )


@_closed
@dataclass
class CompareConfig:
    rows: list[Text] | None = _help(
        "paradigm:method rows of `fedlingua compare` (default: federated, monolingual and "
        "centralized prompt-encoder)",
        None,
    )
    overrides: dict[Text, list[Text]] = _help(
        "per-row dotted overrides, e.g. {'monolingual:prompt-encoder' = "
        "['train.logit_adjustment=0']}: each row can keep its own best settings",
        factory=dict,
    )


@_closed
@dataclass
class RunConfig:
    paradigm: Paradigm = _help("federation, one model per language, or pooled data", "federated")
    seed: Int = _help("seed for data splits, sampling, initialisation and training", 0)
    output_dir: Text = _help("folder that receives run directories", "runs")
    name: Text | None = _help("run directory name (default: derived from the config)", None)
    threads: Int | None = _help("torch threads (default: all cores)", None)
    progress: Flag | None = _help("progress bars (default: only on a terminal, not under CI)", None)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    # ---- validation -----------------------------------------------------------------------
    def validate(self) -> RunConfig:
        """Check types, choices and the cross-field rules; raise `ConfigError` on the first."""
        # A config built or edited in code gets the same type and choice checks as a file.
        _parse(type(self), self.to_dict())
        _check_name(self.name)
        _check_schedule(self)
        _check_method_and_data(self)
        _check_device_and_fusing(self)
        _check_privacy(self)
        return self

    # ---- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        return _parse(cls, raw)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
        raw: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if not path.exists():
                raise ConfigError(f"config file {path} does not exist")
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                ) from None
            except ValueError as exc:  # TOMLDecodeError, or an integer past 4300 digits
                raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
            except OSError as exc:  # a folder, no permission...
                raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from exc
        for item in overrides or []:
            apply_override(raw, item)
        return cls.from_dict(raw).validate()


# ---- cross-field rules (the schema's types and Literal choices did the rest) ---------------
def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def _check_name(name: str | None) -> None:
    """A run name is one folder name under `output_dir`: no separator, no `..`."""
    _need(
        name is None or (_RUN_NAME.fullmatch(name) is not None and ".." not in name),
        f"name={name!r}: a run name is letters, digits, '.', '_' and '-' (starting with a "
        "letter or digit, no '..'): it names one folder under output_dir",
    )


def _check_schedule(cfg: RunConfig) -> None:
    """Rounds, client sampling, quorum and the local training schedule."""
    fed, train = cfg.federation, cfg.train
    _need(fed.rounds >= 1, f"federation.rounds={fed.rounds}: must be >= 1")
    _need(0 < fed.fraction <= 1, f"federation.fraction={fed.fraction}: must be in (0, 1]")
    _need(0 <= fed.client_dropout < 1, "federation.client_dropout must be in [0, 1)")
    _need(0 <= fed.trim_beta < 0.5, "federation.trim_beta must be in [0, 0.5)")
    _need(fed.min_clients >= 1, "federation.min_clients must be >= 1")
    _need(
        fed.round_timeout is None or fed.round_timeout > 0,
        "federation.round_timeout must be > 0 seconds (leave it unset for no limit)",
    )
    _need(train.local_epochs >= 1, "train.local_epochs must be >= 1")
    _need(
        train.local_steps is None or train.local_steps >= 1,
        "train.local_steps must be >= 1 (or unset for whole epochs)",
    )
    _need(train.batch_size >= 1, "train.batch_size must be >= 1")
    _need(train.lr is None or train.lr > 0, "train.lr must be > 0")
    _check_evaluation(cfg)


def _check_evaluation(cfg: RunConfig) -> None:
    ev = cfg.evaluation
    _need(ev.every >= 1, "evaluation.every must be >= 1")
    _need(ev.patience is None or ev.patience >= 1, "evaluation.patience must be >= 1")
    _need(
        ev.patience is None or ev.select_on_dev,
        "evaluation.patience stops on dev accuracy: set evaluation.select_on_dev=true",
    )
    _need(ev.min_rounds >= 0, "evaluation.min_rounds must be >= 0")
    _need(ev.personalize >= 0, "evaluation.personalize must be >= 0 local steps")
    _need(cfg.train.logit_adjustment >= 0, "train.logit_adjustment must be >= 0")


def _check_method_and_data(cfg: RunConfig) -> None:
    m, d = cfg.method, cfg.data
    if m.name in ("prompt-encoder", "soft-prompt"):
        _need(m.num_virtual_tokens >= 1, "method.num_virtual_tokens must be >= 1")
    _need(m.lora_r >= 1, "method.lora_r must be >= 1")
    _need(d.clients_per_language >= 1, "data.clients_per_language must be >= 1")
    _need(d.alpha > 0, "data.alpha must be > 0")
    _need(d.max_length >= 8, "data.max_length must be >= 8")
    _check_data_files(d)


def _check_data_files(d: DataConfig) -> None:
    """data.splits names train/dev/test only, each a file stem; they apply to folders."""
    unknown = sorted(set(d.splits or {}) - {"train", "dev", "test"})
    _need(not unknown, f"data.splits names unknown splits {unknown}: use train, dev, test")
    empty = sorted(k for k, v in (d.splits or {}).items() if not v.strip() or "/" in v)
    _need(not empty, f"data.splits {empty}: give a file stem in the language folder, e.g. 'dev'")
    builtin = d.source == "cldr" or d.source.startswith("hf:")
    for key, value in (("splits", d.splits), ("quoting", d.quoting)):
        _need(
            value is None or not builtin,
            f"data.{key} applies to folder sources, not data.source={d.source!r}",
        )


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
FUSABLE_METHODS = ("prompt-encoder", "soft-prompt")  # per-client virtual tokens and head


def _check_device_and_fusing(cfg: RunConfig) -> None:
    _need(
        DEVICE_PATTERN.fullmatch(cfg.model.device) is not None,
        f"model.device={cfg.model.device!r}: use auto, cpu, cuda or cuda:N",
    )
    k = cfg.federation.fuse_clients
    _need(k >= 1, f"federation.fuse_clients={k}: must be >= 1 (1 = clients one after another)")
    if k == 1:
        return
    _need(cfg.paradigm == "federated", "federation.fuse_clients > 1 needs paradigm='federated'")
    _need(
        cfg.method.name in FUSABLE_METHODS,
        f"federation.fuse_clients > 1 supports method.name in {FUSABLE_METHODS}, "
        f"not {cfg.method.name!r}",
    )
    _need(
        not cfg.privacy.secure_aggregation and cfg.privacy.dp != "local",
        "federation.fuse_clients > 1 cannot run client mods (SecAgg+, local DP): set it to 1",
    )
    _need(
        cfg.federation.strategy != "scaffold" and not cfg.train.keep_optimizer_state,
        "federation.fuse_clients > 1 keeps no per-client state (SCAFFOLD's control variate, "
        "train.keep_optimizer_state): set it to 1",
    )


def _check_privacy(cfg: RunConfig) -> None:
    p = cfg.privacy
    _need(0 < p.delta < 1, f"privacy.delta={p.delta}: must be in (0, 1)")
    _need(p.clipping_norm > 0, "privacy.clipping_norm must be > 0")
    _need(0 <= p.target_clipped_quantile <= 1, "privacy.target_clipped_quantile: in [0, 1]")
    _need(p.clip_norm_lr > 0, "privacy.clip_norm_lr must be > 0")
    _need(
        p.clipped_count_stddev is None or p.clipped_count_stddev > 0,
        "privacy.clipped_count_stddev must be > 0",
    )
    if p.dp == "none":
        _need(
            p.epsilon is None and p.noise_multiplier is None,
            "privacy.epsilon / privacy.noise_multiplier need privacy.dp (central-fixed, "
            "central-adaptive or local)",
        )
    else:
        _check_dp(cfg)
    if p.secure_aggregation:
        _check_secure_aggregation(cfg)


def _check_dp(cfg: RunConfig) -> None:
    """Client-level DP: a federation, one noise setting, an averaging strategy."""
    p = cfg.privacy
    _need(
        cfg.paradigm == "federated",
        f"privacy.dp={p.dp!r} is client-level DP of a federation: use paradigm='federated'",
    )
    _need(
        (p.epsilon is None) != (p.noise_multiplier is None),
        f"privacy.dp={p.dp!r}: set exactly one of privacy.epsilon (a target for the "
        "run) and privacy.noise_multiplier",
    )
    _need(p.epsilon is None or p.epsilon > 0, "privacy.epsilon must be > 0")
    _need(
        p.noise_multiplier is None or p.noise_multiplier > 0,
        "privacy.noise_multiplier must be > 0",
    )
    _need(
        cfg.federation.strategy in DP_STRATEGIES,
        f"privacy.dp needs an averaging strategy {DP_STRATEGIES}, not "
        f"federation.strategy={cfg.federation.strategy!r} (its noise is calibrated "
        "to one client's share of an average)",
    )
    _need(
        p.dp != "local" or p.clipping == "server",
        "privacy.clipping applies to the central modes (local DP always clips on the client)",
    )


def _check_secure_aggregation(cfg: RunConfig) -> None:
    p = cfg.privacy
    _need(cfg.paradigm == "federated", "privacy.secure_aggregation needs paradigm='federated'")
    _need(
        p.dp == "none",
        "privacy.secure_aggregation with privacy.dp is not supported yet: run one of them",
    )
    _need(
        cfg.federation.strategy == "fedavg",
        "privacy.secure_aggregation aggregates a weighted sum: use federation.strategy='fedavg'",
    )
    _need(p.secagg_num_shares > 0, "privacy.secagg_num_shares must be > 0")
    _need(p.secagg_threshold > 0, "privacy.secagg_threshold must be > 0")
    _need(p.secagg_clipping_range > 0, "privacy.secagg_clipping_range must be > 0")
    _need(p.secagg_max_weight > 0, "privacy.secagg_max_weight must be > 0")


# ---- loading: dotted overrides, then pydantic against the schema --------------------------
def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    return obj


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `a.b.c=value` override (value parsed as TOML, else taken as a string)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value, e.g. federation.rounds=3")
    key, _, text = item.partition("=")
    key = key.strip().replace("-", "_")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except ValueError:  # TOMLDecodeError, or an integer past 4300 digits
        value = text.strip()
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[parts[-1]] = value


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


_Section = typing.TypeVar("_Section")


def _parse(cls: type[_Section], raw: Any) -> _Section:
    """Build `cls` from plain TOML-like data; a `ConfigError` names the first bad key."""
    try:
        return _adapter(cls).validate_python(raw)
    except ValidationError as exc:
        raise _config_error(cls, exc.errors()) from None


_MUST_BE = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "dataclass_type": "a table",
}


def _config_error(cls: type, errors: list[Any]) -> ConfigError:
    """Pydantic's first error, said with the dotted key and what to change."""
    unknown = [e["loc"] for e in errors if e["type"] == "unexpected_keyword_argument"]
    if unknown:  # all the typos of one section at once, with the keys that section has
        where = unknown[0][:-1]
        keys = sorted(_dotted(loc) for loc in unknown if loc[:-1] == where)
        known = sorted(f.name for f in dataclasses.fields(_section_at(cls, where)))
        return ConfigError(
            f"unknown config key(s) {keys}; known under {_dotted(where) or 'the top level'}: "
            f"{known}"
        )
    first = errors[0]
    key, value = _dotted(first["loc"]) or "config", first["input"]
    if first["type"] == "literal_error":
        return ConfigError(f"{key}={value!r}: use {first['ctx']['expected']}")
    if first["type"] in _MUST_BE:
        return ConfigError(f"{key} must be {_MUST_BE[first['type']]}, got {value!r}")
    return ConfigError(f"{key}={value!r}: {first['msg']}")


def _dotted(loc: tuple[str | int, ...]) -> str:
    """('data', 'low_resource', 1) -> 'data.low_resource[1]'."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key.lstrip(".")


def _section_at(cls: type, loc: tuple[str | int, ...]) -> type:
    for name in loc:
        cls = typing.get_type_hints(cls)[name]
    return cls
