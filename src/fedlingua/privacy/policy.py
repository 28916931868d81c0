"""A site's own policy: what it accepts from a coordinator it need not trust.

The run config comes from the coordinator. A site states, in a TOML file named by its
node config (`--node-config "data-dir='/srv/site' policy='/srv/site/policy.toml'"`), the
least it accepts; every train and evaluate message is checked against it, and a message
that asks for less is refused with a `PolicyViolation` (the coordinator records it as the
site's failure; the site's log has it too). Every field is optional:

    min_batch_size = 16          # no update from fewer examples than this per step
    min_local_steps = 4          # optimizer steps per round (local-steps, or epochs x batches)
    max_rounds = 100             # rounds it trains in at most
    min_eval_rows = 20           # no confusion matrix of fewer rows (one row: its label)
    require_secure_aggregation = true
    dp = "local"                 # "local": the site adds noise itself; "central-client":
    min_noise_multiplier = 1.0   #   it clips itself and the server adds noise
    max_clipping_norm = 1.0
    models = ["xlm-roberta-base"]   # the backbones it agrees to run

The noise and clipping a policy requires are the site's own mods (`privacy.dp.client_mods`
on the site's process), so a coordinator cannot switch them off by sending another config.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from flwr.app import ConfigRecord

from fedlingua.config import ConfigError, RunConfig
from fedlingua.federation.mods import PublicError
from fedlingua.privacy.dp import noise_multiplier


class PolicyViolation(PublicError):
    """A coordinator asked a site for less than its policy accepts."""


@dataclass(frozen=True)
class SitePolicy:
    """The least a site accepts (None: no requirement)."""

    min_batch_size: int | None = None
    min_local_steps: int | None = None
    max_rounds: int | None = None
    min_eval_rows: int | None = None
    require_secure_aggregation: bool = False
    dp: Literal["local", "central-client"] | None = None
    min_noise_multiplier: float | None = None
    max_clipping_norm: float | None = None
    models: tuple[str, ...] | None = None

    @classmethod
    def load(cls, path: str | Path) -> SitePolicy:
        """The policy file; a clear error naming the field, never echoing the file."""
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            raise ConfigError(f"site policy {path}: not a readable TOML file") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"site policy {path}: unknown fields {unknown}; known {sorted(known)}"
            )
        if "models" in raw:
            raw["models"] = tuple(raw["models"])
        policy = cls(**raw)
        if policy.dp not in (None, "local", "central-client"):
            raise ConfigError(f"site policy {path}: dp must be 'local' or 'central-client'")
        return policy

    def check_run(self, cfg: RunConfig) -> None:
        """The run as a whole: model, secure aggregation, differential privacy."""
        if self.models is not None and cfg.model.name not in self.models:
            raise PolicyViolation(f"model {cfg.model.name!r} is not one this site runs")
        p = cfg.privacy
        if self.require_secure_aggregation and not p.secure_aggregation:
            raise PolicyViolation("this site takes part only with secure aggregation")
        if self.dp == "local" and p.dp != "local":
            raise PolicyViolation("this site adds local DP noise: privacy.dp must be 'local'")
        if self.dp == "central-client" and not (
            p.dp.startswith("central") and p.clipping == "client"
        ):
            raise PolicyViolation("this site clips its own updates: central DP, clipping='client'")
        if self.dp is not None:
            z = noise_multiplier(cfg) or 0.0
            if self.min_noise_multiplier is not None and z < self.min_noise_multiplier:
                floor = self.min_noise_multiplier
                raise PolicyViolation(f"noise multiplier {z:.4g} is below this site's {floor}")
            if self.max_clipping_norm is not None and p.clipping_norm > self.max_clipping_norm:
                raise PolicyViolation("the clipping norm is above this site's bound")

    def check_train(self, config: ConfigRecord, examples: int) -> None:
        """One train (or personalization) message's hyper-parameters, for `examples` rows."""
        batch = int(config.get("batch-size", 0))
        if self.min_batch_size is not None and batch < self.min_batch_size:
            raise PolicyViolation(f"batch size {batch} is below this site's {self.min_batch_size}")
        steps = int(config.get("local-steps", 0) or 0)
        if not steps:
            steps = int(config.get("local-epochs", 1)) * math.ceil(examples / max(batch, 1))
        if self.min_local_steps is not None and steps < self.min_local_steps:
            raise PolicyViolation(
                f"{steps} local steps is below this site's {self.min_local_steps}"
            )
        rnd = int(config.get("server-round", 0))
        if self.max_rounds is not None and rnd > self.max_rounds:
            raise PolicyViolation(f"round {rnd} is past this site's {self.max_rounds} rounds")

    def check_evaluation(self, rows: int) -> None:
        if self.min_eval_rows is not None and 0 < rows < self.min_eval_rows:
            raise PolicyViolation(
                f"{rows} evaluation rows is below this site's {self.min_eval_rows}"
            )
