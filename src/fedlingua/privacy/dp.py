"""Client-level differential privacy through Flower's own DP strategy wrappers and client mods.

`privacy.dp` selects one of:

    central-fixed     DifferentialPrivacyServerSideFixedClipping (privacy.clipping="server")
                      or ...ClientSideFixedClipping + Flower's `fixedclipping_mod` ("client")
    central-adaptive  ...ServerSideAdaptiveClipping / ...ClientSideAdaptiveClipping +
                      `adaptiveclipping_mod` (Andrew et al. 2021: the clipping norm tracks
                      a quantile of the update norms, learned from a noisy clipped count)
    local             Flower's `LocalDpMod`: every client clips its own update and adds
                      Gaussian noise before anything leaves it

Central DP: each round the aggregate is the *unweighted* mean of the clipped updates of the
n sampled clients plus N(0, (z C / n)^2) noise per coordinate: a Gaussian mechanism with
noise multiplier z for adding or removing one client (its whole dataset), so the privacy
unit is a client. Example-count weighting would give a large client more than 1/n of the
mean, so under DP the inner FedAvg/FedProx weights every client equally. A round in which
only k < n replies arrive is a weaker release (multiplier z k / n) and is accounted so.

Local DP: each client's released update is its clipped update plus N(0, (2 z C)^2) noise:
sensitivity 2C, since any change of the client's data can move a clipped update anywhere
in the C-ball. LocalDpMod is parameterised by a per-release (epsilon, delta); those are
derived from z so that its noise has exactly that standard deviation.

The noise multiplier is `privacy.noise_multiplier`, or calibrated to `privacy.epsilon`
for `federation.rounds` releases. `DPPlan.of(cfg)` is what a run's federations need from
all this, as plain values: equal client weights, the strategy wrapper, whether to seed the
server's noise (the client mods come from `client_mods`). `account` reports the
(epsilon, delta) a finished run spent (exact composition of Gaussian mechanisms,
`fedlingua.privacy.accounting`).
Noise comes from OS entropy (`EntropyNoise` on the sites, `DPPlan.fresh_server_noise` on
the server): no party can recompute it from what it knows. With `privacy.seeded_noise`
every noise draw derives from the run seed instead, so in-process simulations are
reproducible; anyone holding the run config can then recompute and subtract the noise, so
such a run reports no epsilon, and a Flower deployment refuses the setting.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from flwr.app import Context, Message
from flwr.clientapp.mod import LocalDpMod, adaptiveclipping_mod, fixedclipping_mod
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)

from fedlingua.config import PrivacyConfig, RunConfig
from fedlingua.federation.mods import App, Mod
from fedlingua.federation.secagg import secagg_client_mods
from fedlingua.privacy.accounting import calibrate_noise, gaussian_epsilon
from fedlingua.runtime import derive_seed, entropy_seed, flower_log_level


def noise_multiplier(cfg: RunConfig) -> float | None:
    """The run's noise multiplier z: configured, or calibrated to the target epsilon."""
    p = cfg.privacy
    if p.dp == "none":
        return None
    if p.noise_multiplier is not None:
        return float(p.noise_multiplier)
    assert p.epsilon is not None  # validated: exactly one of the two
    return calibrate_noise(p.epsilon, cfg.federation.rounds, p.delta)


@dataclass(frozen=True)
class DPPlan:
    """What differential privacy asks of a run's federations, as plain values.

    `equal_weights` and `wrap` are `fedlingua.federation.strategies.make_strategy`'s
    arguments, `seed_server_noise` is `Federation`'s `seed_noise`.
    """

    privacy: PrivacyConfig
    noise_multiplier: float | None  # z; None: no differential privacy

    @classmethod
    def of(cls, cfg: RunConfig) -> DPPlan:
        return cls(cfg.privacy, noise_multiplier(cfg))

    @property
    def equal_weights(self) -> bool:
        """Client-level DP: every client weighs the same in the average."""
        return self.privacy.dp != "none"

    @property
    def seed_server_noise(self) -> bool:
        """Seed numpy's global generator per round: Flower's DP wrappers draw from it."""
        return self.privacy.dp.startswith("central") and self.privacy.seeded_noise

    @property
    def fresh_server_noise(self) -> bool:
        """Reseed numpy's global generator from OS entropy before each round's noise."""
        return self.privacy.dp.startswith("central") and not self.privacy.seeded_noise

    @property
    def client_clipping(self) -> bool:
        """Sites clip their own updates: the server checks the norms it receives."""
        return self.privacy.dp.startswith("central") and self.privacy.clipping == "client"

    def wrap(self, strategy: Strategy, num_sampled: int) -> Strategy:
        """`strategy` in the Flower DP wrapper this plan selects (unchanged without one)."""
        if self.noise_multiplier is None:
            return strategy
        return wrap_strategy(strategy, self.privacy, self.noise_multiplier, num_sampled)


# ---- server side -----------------------------------------------------------------------------
def clipped_count_stddev(p: PrivacyConfig, z: float, num_sampled: int) -> float:
    """Noise on the clipped count of adaptive clipping: Andrew et al.'s n/20, and at least z.

    Flower requires z < 2 x this value (the update noise is what is left of z after the
    count's share); with few clients n/20 is far below that, hence the floor at z.
    """
    if p.clipped_count_stddev is not None:
        return float(p.clipped_count_stddev)
    return max(num_sampled / 20, z)


def wrap_strategy(strategy: Strategy, p: PrivacyConfig, z: float, num_sampled: int) -> Strategy:
    """`strategy` wrapped in the Flower DP strategy `p.dp` selects (local DP: unchanged)."""
    if p.dp in ("none", "local"):
        return strategy
    with flower_log_level(logging.ERROR):
        if p.dp == "central-fixed":
            cls = (
                DifferentialPrivacyServerSideFixedClipping
                if p.clipping == "server"
                else DifferentialPrivacyClientSideFixedClipping
            )
            return cls(strategy, z, p.clipping_norm, num_sampled)
        cls = (
            DifferentialPrivacyServerSideAdaptiveClipping
            if p.clipping == "server"
            else DifferentialPrivacyClientSideAdaptiveClipping
        )
        return cls(
            strategy,
            z,
            num_sampled,
            initial_clipping_norm=p.clipping_norm,
            target_clipped_quantile=p.target_clipped_quantile,
            clip_norm_lr=p.clip_norm_lr,
            clipped_count_stddev=clipped_count_stddev(p, z, num_sampled),
        )


# ---- client side -----------------------------------------------------------------------------
class SeededNoise:
    """Wrap a noise-adding mod: seed numpy's global generator per (run seed, round, client).

    Flower's mods draw from `np.random`; the seed comes from the train config (run seed,
    server round) and the node's partition id, which are the same in-process and under
    Flower, so both paths add identical noise.
    """

    def __init__(self, mod: Mod) -> None:
        self.mod = mod

    def __call__(self, msg: Message, ctx: Context, call_next: App) -> Message:
        config = next(iter(msg.content.config_records.values()), None)
        if config is not None and "seed" in config and "server-round" in config:
            who = ctx.node_config.get("partition-id", ctx.node_id)
            seed = derive_seed("client-noise", config["seed"], config["server-round"], who)
            np.random.seed(seed)
        return self.mod(msg, ctx, call_next)


class EntropyNoise:
    """Wrap a noise-adding mod: reseed numpy's global generator from OS entropy first, so
    nothing else in the process (a seeded simulation, a library) fixes the noise."""

    def __init__(self, mod: Mod) -> None:
        self.mod = mod

    def __call__(self, msg: Message, ctx: Context, call_next: App) -> Message:
        np.random.seed(entropy_seed())
        return self.mod(msg, ctx, call_next)


def local_dp_mod(p: PrivacyConfig, z: float) -> LocalDpMod:
    """LocalDpMod whose Gaussian noise has std 2 z C (sensitivity 2C, noise multiplier z)."""
    sensitivity = 2 * p.clipping_norm
    epsilon_per_release = math.sqrt(2 * math.log(1.25 / p.delta)) / z
    with flower_log_level(logging.ERROR):
        return LocalDpMod(p.clipping_norm, sensitivity, epsilon_per_release, p.delta)


def client_mods(cfg: RunConfig) -> list[Mod]:
    """The Flower client mods `cfg.privacy` needs around the client's train handler:
    SecAgg+ (`fedlingua.federation.secagg`) and DP (local noise, client-side clipping)."""
    p = cfg.privacy
    z = noise_multiplier(cfg)
    mods: list[Mod] = []
    if p.secure_aggregation:
        mods += secagg_client_mods()
    if p.dp == "local":
        assert z is not None
        mod: Mod = local_dp_mod(p, z)
        mods.append(SeededNoise(mod) if p.seeded_noise else EntropyNoise(mod))
    elif p.dp.startswith("central") and p.clipping == "client":
        mods.append(fixedclipping_mod if p.dp == "central-fixed" else adaptiveclipping_mod)
    return mods


# ---- accounting of a finished run -----------------------------------------------------------
def account(cfg: RunConfig, history: list[dict]) -> dict | None:
    """The (epsilon, delta) a run spent, from what each round actually released.

    Central DP: a round that aggregated the replies of k of its n sampled clients is a
    Gaussian release with multiplier z k / n; rounds that released nothing cost nothing.
    Local DP: each client's releases compose; the run reports the worst client.
    """
    p = cfg.privacy
    z = noise_multiplier(cfg)
    if z is None:
        return None
    releases: list[float] = []
    per_client: dict[str, int] = {}
    for record in history:
        for outcome in record["federations"].values():
            if p.dp == "local":
                for client in outcome["succeeded"]:
                    per_client[client] = per_client.get(client, 0) + 1
            elif outcome["updated"] and outcome["sampled"]:
                k, n = len(outcome["succeeded"]), len(outcome["sampled"])
                releases.append(z * k / n)
    if p.dp == "local":
        worst = max(per_client.values(), default=0)
        releases = [z] * worst
    epsilon = gaussian_epsilon(releases, p.delta) if releases else 0.0
    if p.seeded_noise:  # anyone with the config recomputes the noise: no guarantee at all
        epsilon = None
    return {
        "dp": p.dp,
        "clipping": "client" if p.dp == "local" else p.clipping,
        "noise_multiplier": z,
        "calibrated_to_epsilon": p.epsilon,
        "clipping_norm": p.clipping_norm,
        "delta": p.delta,
        "epsilon": epsilon,
        "releases": len(releases),
        "privacy_unit": "one client (all its examples)",
        "neighbouring": "replace one client's data (sensitivity 2C)"
        if p.dp == "local"
        else "add or remove one client (sensitivity C of the sum, fixed denominator n)",
        "accountant": "exact composition of Gaussian mechanisms (mu-GDP), no sampling "
        "amplification",
        "seeded_noise": p.seeded_noise,
        "noise_source": "the run seed: recomputable by anyone holding the run config, so no "
        "epsilon is reported"
        if p.seeded_noise
        else "OS entropy",
    }
