"""One dataclass tree describes a run; it loads from TOML and takes dotted CLI overrides.

`RunConfig.validate()` checks everything that can be checked before any work
starts (unknown method or paradigm, rounds < 1, fraction outside (0, 1], a
prompt that leaves no room for text, unknown language groups...) and raises
`ConfigError` with a message that says what to change.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

PARADIGMS = ("federated", "monolingual", "centralized")
METHODS = ("prompt-encoder", "soft-prompt", "lora", "full")
STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedyogi", "fedmedian", "fedtrimmedavg")
PRECISIONS = ("auto", "fp32", "fp32-onednn", "bf16")
DP_MODES = ("none", "central-fixed", "central-adaptive", "local")
DP_STRATEGIES = ("fedavg", "fedprox")  # client-level DP needs an (unweighted) average


class ConfigError(ValueError):
    """A run configuration that cannot work; the message says what to change."""


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class DataConfig:
    source: str = _help(
        "'cldr' (built-in, offline), a preset (masakhanews, sib200, xnli, xglue_nc), "
        "'hf:<id>', or a folder <root>/<lang>/<split>.tsv|csv|jsonl",
        "cldr",
    )
    root: str | None = _help("data root for presets (default: $FEDLINGUA_DATA_ROOT)", None)
    languages: list[str] | None = _help("languages that get clients (default: all)", None)
    eval_languages: list[str] | None = _help(
        "languages evaluated (default: the client languages plus zero_shot_languages)", None
    )
    zero_shot_languages: list[str] = _help(
        "languages evaluated without any client (cross-lingual transfer)", factory=list
    )
    low_resource: list[str] = _help("languages averaged as the low-resource group", factory=list)
    columns: dict[str, str] | None = _help("folder sources: schema field -> file column", None)
    clients_per_language: int = _help("clients per language", 1)
    partition: str = _help("'iid' or 'dirichlet' split of a language across its clients", "iid")
    alpha: float = _help("Dirichlet concentration for label skew", 0.5)
    few_shot: int | None = _help("k training examples per class per language", None)
    max_train_per_client: int | None = _help("cap on training examples per client", None)
    max_eval_per_language: int | None = _help("cap on dev/test examples per language", None)
    max_length: int = _help("maximum text tokens (virtual prompt tokens come on top)", 128)
    on_bad_rows: str = _help("'error' (default) or 'skip' (skipped rows are counted)", "error")


@dataclass
class ModelConfig:
    name: str = _help("'e5-small' (offline default), a hub id or a local folder", "e5-small")
    precision: str = _help(
        "'fp32-onednn' (default: fp32 matrix products through oneDNN, fp32 accuracy checked "
        "on the CPU at hand, plain fp32 where the check fails), 'fp32' (plain), 'bf16' "
        "(autocast of the frozen backbone, fastest but failed the accuracy guard, see "
        "benchmarks/results/precision_guard.md; trainable tensors and optimizer stay fp32), "
        "or 'auto' (bf16 where this CPU multiplies bf16 clearly faster, else fp32)",
        "fp32-onednn",
    )
    dropout: float = _help("dropout before the classification head", 0.1)


@dataclass
class MethodConfig:
    name: str = _help("prompt-encoder | soft-prompt | lora | full", "prompt-encoder")
    num_virtual_tokens: int = _help("virtual tokens (prompt methods)", 20)
    reparameterization: str = _help("prompt-encoder reparameterization: 'mlp' or 'lstm'", "mlp")
    encoder_hidden_size: int = _help("hidden size of the prompt encoder", 128)
    lora_r: int = _help("LoRA rank", 8)
    lora_alpha: int = _help("LoRA alpha", 16)
    lora_dropout: float = _help("LoRA dropout", 0.0)
    lora_target_modules: list[str] = _help(
        "LoRA target module names", factory=lambda: ["query", "value"]
    )
    freeze_word_embeddings: bool = _help("full fine-tuning: keep word embeddings frozen", True)


@dataclass
class TrainConfig:
    lr: float | None = _help("learning rate (default: the method's own default)", None)
    batch_size: int = _help("training batch size", 16)
    eval_batch_size: int = _help("evaluation batch size", 64)
    local_epochs: int = _help("passes over a client's data per round", 1)
    local_steps: int | None = _help(
        "optimizer steps per round instead of whole epochs (batches drawn at random, "
        "seeded per round): more, shorter rounds limit client drift",
        None,
    )
    weight_decay: float = _help("AdamW weight decay", 0.0)
    max_grad_norm: float = _help("gradient clipping (0 disables)", 1.0)


@dataclass
class FederationConfig:
    rounds: int = _help("rounds (for monolingual/centralized: blocks of local_epochs)", 5)
    fraction: float = _help("fraction of clients sampled each round, in (0, 1]", 1.0)
    strategy: str = _help(
        "fedavg | fedprox | fedadam | fedyogi | fedmedian | fedtrimmedavg", "fedavg"
    )
    proximal_mu: float = _help("FedProx mu", 0.01)
    server_lr: float = _help("FedAdam / FedYogi server learning rate", 0.01)
    trim_beta: float = _help("FedTrimmedAvg fraction cut from each end", 0.2)
    client_dropout: float = _help("probability a selected client fails in a round", 0.0)
    min_clients: int = _help(
        "quorum: a round starts only with at least this many clients connected and "
        "aggregates only with at least this many valid replies; below it the round is "
        "skipped (global state kept, the skip recorded)",
        1,
    )
    round_timeout: float | None = _help(
        "seconds the server waits for the clients' replies in a round (Flower deployment); "
        "a client that has not replied by then counts as failed (default: no limit)",
        None,
    )


@dataclass
class PrivacyConfig:
    dp: str = _help(
        "client-level differential privacy: 'none', 'central-fixed' / 'central-adaptive' "
        "(the server adds Gaussian noise to the average of clipped updates; fixed or "
        "adaptive clipping norm) or 'local' (each client clips and noises its own update)",
        "none",
    )
    epsilon: float | None = _help(
        "target epsilon for the whole run: the noise multiplier is calibrated to it", None
    )
    noise_multiplier: float | None = _help(
        "Gaussian noise multiplier z (instead of epsilon; noise std = z x clipping norm)", None
    )
    delta: float = _help("delta of the reported (epsilon, delta)", 1e-5)
    clipping_norm: float = _help(
        "L2 bound on a client's update (central-adaptive: the initial bound)", 1.0
    )
    clipping: str = _help(
        "central modes: where updates are clipped, 'server' or 'client' (a client mod)", "server"
    )
    target_clipped_quantile: float = _help("central-adaptive: quantile of updates clipped", 0.5)
    clip_norm_lr: float = _help("central-adaptive: learning rate of the clipping norm", 0.2)
    clipped_count_stddev: float | None = _help(
        "central-adaptive: noise on the clipped count (default: max(clients/20, z))", None
    )
    seeded_noise: bool = _help(
        "draw DP noise from the run seed (reproducible experiments); false: OS entropy, what a "
        "deployment needs (noise an observer who knows the seed cannot subtract)",
        True,
    )
    secure_aggregation: bool = _help(
        "Flower SecAgg+: the server obtains only the sum of the clients' masked updates", False
    )
    secagg_num_shares: float = _help(
        "SecAgg+: key shares per client (> 2 clients), or a fraction of the sampled clients", 1.0
    )
    secagg_threshold: float = _help(
        "SecAgg+: shares needed to reconstruct a key (an integer, or a fraction of the shares)",
        0.67,
    )
    secagg_clipping_range: float = _help(
        "SecAgg+: parameters are clipped to [-r, r] before quantization", 8.0
    )
    secagg_max_weight: float = _help(
        "SecAgg+: largest example count a client may weigh (more overflows the quantized "
        "sum; less precision the larger it is)",
        1000.0,
    )
    secagg_timeout: float | None = _help(
        "SecAgg+: seconds to wait for each stage's replies (default: no limit)", None
    )


@dataclass
class EvalConfig:
    every: int = _help("evaluate every k rounds (the last round always)", 1)
    select_on_dev: bool = _help("report the round with the best dev accuracy", False)
    matrix: bool = _help("monolingual: evaluate every language model on every language", False)


@dataclass
class RunConfig:
    paradigm: str = _help("federated | monolingual | centralized", "federated")
    seed: int = _help("seed for data splits, sampling, initialisation and training", 0)
    output_dir: str = _help("folder that receives run directories", "runs")
    name: str | None = _help("run directory name (default: derived from the config)", None)
    threads: int | None = _help("torch threads (default: all cores)", None)
    progress: bool | None = _help("progress bars (default: only on a terminal, not under CI)", None)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    # ---- validation -----------------------------------------------------------------------
    def validate(self) -> RunConfig:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        need(self.paradigm in PARADIGMS, f"paradigm={self.paradigm!r}: use one of {PARADIGMS}")
        need(self.method.name in METHODS, f"method.name={self.method.name!r}: use one of {METHODS}")
        fed = self.federation
        need(fed.strategy in STRATEGIES, f"federation.strategy={fed.strategy!r}: use {STRATEGIES}")
        need(fed.rounds >= 1, f"federation.rounds={fed.rounds}: must be >= 1")
        need(0 < fed.fraction <= 1, f"federation.fraction={fed.fraction}: must be in (0, 1]")
        need(0 <= fed.client_dropout < 1, "federation.client_dropout must be in [0, 1)")
        need(0 <= fed.trim_beta < 0.5, "federation.trim_beta must be in [0, 0.5)")
        need(fed.min_clients >= 1, "federation.min_clients must be >= 1")
        need(
            fed.round_timeout is None or fed.round_timeout > 0,
            "federation.round_timeout must be > 0 seconds (leave it unset for no limit)",
        )
        need(self.train.local_epochs >= 1, "train.local_epochs must be >= 1")
        need(
            self.train.local_steps is None or self.train.local_steps >= 1,
            "train.local_steps must be >= 1 (or unset for whole epochs)",
        )
        need(self.train.batch_size >= 1, "train.batch_size must be >= 1")
        need(self.train.lr is None or self.train.lr > 0, "train.lr must be > 0")
        need(self.evaluation.every >= 1, "evaluation.every must be >= 1")
        need(self.model.precision in PRECISIONS, f"model.precision: use one of {PRECISIONS}")
        m = self.method
        need(m.reparameterization in ("mlp", "lstm"), "method.reparameterization: 'mlp' or 'lstm'")
        if m.name in ("prompt-encoder", "soft-prompt"):
            need(m.num_virtual_tokens >= 1, "method.num_virtual_tokens must be >= 1")
        need(m.lora_r >= 1, "method.lora_r must be >= 1")
        d = self.data
        need(d.partition in ("iid", "dirichlet"), "data.partition: 'iid' or 'dirichlet'")
        need(d.clients_per_language >= 1, "data.clients_per_language must be >= 1")
        need(d.alpha > 0, "data.alpha must be > 0")
        need(d.max_length >= 8, "data.max_length must be >= 8")
        need(d.on_bad_rows in ("error", "skip"), "data.on_bad_rows: 'error' or 'skip'")
        self._validate_privacy(need)
        return self

    def _validate_privacy(self, need: typing.Callable[[bool, str], None]) -> None:
        p = self.privacy
        need(p.dp in DP_MODES, f"privacy.dp={p.dp!r}: use one of {DP_MODES}")
        need(0 < p.delta < 1, f"privacy.delta={p.delta}: must be in (0, 1)")
        need(p.clipping_norm > 0, "privacy.clipping_norm must be > 0")
        need(p.clipping in ("server", "client"), "privacy.clipping: 'server' or 'client'")
        need(0 <= p.target_clipped_quantile <= 1, "privacy.target_clipped_quantile: in [0, 1]")
        need(p.clip_norm_lr > 0, "privacy.clip_norm_lr must be > 0")
        need(
            p.clipped_count_stddev is None or p.clipped_count_stddev > 0,
            "privacy.clipped_count_stddev must be > 0",
        )
        if p.dp == "none":
            need(
                p.epsilon is None and p.noise_multiplier is None,
                "privacy.epsilon / privacy.noise_multiplier need privacy.dp (central-fixed, "
                "central-adaptive or local)",
            )
        else:
            need(
                self.paradigm == "federated",
                f"privacy.dp={p.dp!r} is client-level DP of a federation: use paradigm='federated'",
            )
            need(
                (p.epsilon is None) != (p.noise_multiplier is None),
                f"privacy.dp={p.dp!r}: set exactly one of privacy.epsilon (a target for the "
                "run) and privacy.noise_multiplier",
            )
            need(p.epsilon is None or p.epsilon > 0, "privacy.epsilon must be > 0")
            need(
                p.noise_multiplier is None or p.noise_multiplier > 0,
                "privacy.noise_multiplier must be > 0",
            )
            need(
                self.federation.strategy in DP_STRATEGIES,
                f"privacy.dp needs an averaging strategy {DP_STRATEGIES}, not "
                f"federation.strategy={self.federation.strategy!r} (its noise is calibrated "
                "to one client's share of an average)",
            )
            need(
                p.dp != "local" or p.clipping == "server",
                "privacy.clipping applies to the central modes (local DP always clips on the "
                "client)",
            )
        if p.secure_aggregation:
            need(
                self.paradigm == "federated",
                "privacy.secure_aggregation needs paradigm='federated'",
            )
            need(
                p.dp == "none",
                "privacy.secure_aggregation with privacy.dp is not supported yet: run one of them",
            )
            need(
                self.federation.strategy == "fedavg",
                "privacy.secure_aggregation aggregates a weighted sum: use "
                "federation.strategy='fedavg'",
            )
            need(p.secagg_num_shares > 0, "privacy.secagg_num_shares must be > 0")
            need(p.secagg_threshold > 0, "privacy.secagg_threshold must be > 0")
            need(p.secagg_clipping_range > 0, "privacy.secagg_clipping_range must be > 0")
            need(p.secagg_max_weight > 0, "privacy.secagg_max_weight must be > 0")

    def check_prompt_room(self, max_positions: int) -> None:
        """Fail when the virtual prompt leaves no room for text in the model's positions."""
        if self.method.name not in ("prompt-encoder", "soft-prompt"):
            return
        room = max_positions - self.method.num_virtual_tokens
        if room < 8:
            raise ConfigError(
                f"method.num_virtual_tokens={self.method.num_virtual_tokens} leaves {room} of the "
                f"model's {max_positions} positions for text: use fewer virtual tokens"
            )

    def check_languages(self, available: list[str]) -> None:
        """Fail when a language list names languages the dataset does not have."""
        d = self.data
        groups = {
            "data.languages": d.languages or [],
            "data.eval_languages": d.eval_languages or [],
            "data.zero_shot_languages": d.zero_shot_languages,
            "data.low_resource": d.low_resource,
        }
        for key, langs in groups.items():
            unknown = sorted(set(langs) - set(available))
            if unknown:
                raise ConfigError(
                    f"{key} names unknown languages {unknown}; the data has {sorted(available)}"
                )
        overlap = set(d.zero_shot_languages) & set(d.languages or available)
        if d.zero_shot_languages and overlap:
            raise ConfigError(
                f"data.zero_shot_languages {sorted(overlap)} also have clients: set data.languages "
                "to the client languages only"
            )

    # ---- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(_drop_none(self.to_dict()))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        return _build(cls, raw, "")

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


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(key) for key in set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {[prefix + u for u in unknown]}; "
            f"known under {prefix or 'the top level'}: {sorted(fields)}"
        )
    kwargs = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(v, args[0], key) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if isinstance(value, int) and abs(value) > 2**1023:  # float() would overflow
            raise ConfigError(f"{key} must be a number in a float's range (below 1e308)")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    return value
