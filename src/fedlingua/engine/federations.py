"""The topology's federations, wired: nodes on a grid, a Flower strategy, the privacy plan.

In-process (the default simulation) every node is a handler on an `InProcessGrid`,
bound to the experiment's one workbench, inside the client mods a Flower ClientApp
applies (payload log outermost, then SecAgg+ and DP); with `federation.fuse_clients =
K > 1` it is a `FusedGrid`, which trains a round's sampled clients K at a time through
the one backbone. With Flower's grid (the ServerApp) the SuperNodes play the nodes. A
local topology (one node per model) trains by plain replacement: no strategy choice,
sampling, dropout or measured payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from fedlingua.config import ConfigError, FederationConfig
from fedlingua.experiment import Experiment
from fedlingua.federation import secagg
from fedlingua.federation.client import ClientSite, handle_train, train_config
from fedlingua.federation.fused_grid import FusedGrid
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.server import Federation
from fedlingua.federation.strategies import make_strategy
from fedlingua.privacy.dp import DPPlan, client_mods
from fedlingua.privacy.payload import payload_log_mods

ClientHandler = Callable[..., object]  # signature of `fedlingua.federation.client.handle_train`


def build_federations(
    exp: Experiment,
    on_step: Callable[[], None] | None = None,
    *,
    grid: Grid | None = None,
    node_names: dict[int, str] | None = None,
    client_handler: ClientHandler | None = None,
) -> dict[str, Federation]:
    """Federation name -> a `Federation` (SecAgg+ or plain) starting from the same state.

    `client_handler` replaces the client update of in-process nodes (same signature as
    `handle_train`): how benchmarks and tests plug in a misbehaving client.
    """
    cfg, topo = exp.cfg, exp.topology
    if grid is not None and topo.local:
        raise ConfigError(f"paradigm={cfg.paradigm!r} runs in-process only, not on a Flower grid")
    if not topo.local and cfg.federation.min_clients > len(exp.clients):
        raise ConfigError(
            f"federation.min_clients={cfg.federation.min_clients} but the config makes only "
            f"{len(exp.clients)} clients: no round could ever aggregate"
        )
    # a single node per model: plain replacement (FedAvg of one reply is that reply), no
    # server optimizer, sampling, faults or dropout
    local = FederationConfig(rounds=cfg.federation.rounds, strategy="fedavg")
    fed_cfg = local if topo.local else cfg.federation
    client_lr = cfg.train.lr or exp.bench.method.default_lr
    base_config = train_config(cfg, client_lr)
    if topo.local:
        base_config["client-dropout"] = 0.0
    feds = {}
    for name, sites in topo.federations.items():
        if grid is None:
            fed_grid = _in_process_grid(exp, sites, client_handler or handle_train, on_step)
            names = {i + 1: s.client_id for i, s in enumerate(sites)}
        else:  # Flower's grid (the ServerApp): its SuperNodes play the clients
            fed_grid, names = grid, dict(node_names or {})
        feds[name] = _federation(
            exp, name, len(sites), fed_grid, names, fed_cfg, base_config, client_lr
        )
    return feds


def _federation(
    exp: Experiment,
    name: str,
    num_nodes: int,
    grid: Grid,
    names: dict[int, str],
    fed_cfg: FederationConfig,
    base_config: ConfigRecord,
    client_lr: float,
) -> Federation:
    cfg = exp.cfg
    init = {k: v.clone() for k, v in exp.bench.get_state().items()}

    def config(rnd: int) -> ConfigRecord:
        return ConfigRecord(dict(base_config))

    if cfg.privacy.secure_aggregation:  # Flower's SecAgg+ workflow: the server gets the sum
        return secagg.SecAggFederation(
            name,
            grid,
            init,
            config,
            seed=cfg.seed,
            privacy=cfg.privacy,
            fraction=fed_cfg.fraction,
            node_names=names,
            rounds=fed_cfg.rounds,
        )
    plan = DPPlan.of(cfg)
    return Federation(
        name,
        make_strategy(
            fed_cfg,
            num_nodes,
            client_lr=client_lr,
            equal_weights=plan.equal_weights,
            wrap=plan.wrap,
        ),
        grid,
        init,
        config,
        seed=cfg.seed,
        node_names=names,
        timeout=fed_cfg.round_timeout,
        min_clients=fed_cfg.min_clients,
        measure=not exp.topology.local,
        seed_noise=plan.seed_server_noise,
    )


def _in_process_grid(
    exp: Experiment,
    sites: list[ClientSite],
    handler: ClientHandler,
    on_step: Callable[[], None] | None,
) -> InProcessGrid:
    """Nodes 1..N on this process's workbench, inside the mods a Flower ClientApp applies."""
    cfg, bench = exp.cfg, exp.bench
    # the mods a Flower ClientApp applies: payload log (outermost), then SecAgg+ and DP
    mods = payload_log_mods() + client_mods(cfg)
    if cfg.federation.fuse_clients > 1:
        if handler is not handle_train:
            raise ConfigError("federation.fuse_clients > 1 runs the built-in client update only")
        return FusedGrid(bench, sites, cfg.federation.fuse_clients, on_step, mods)
    handlers = {
        i + 1: partial(secagg.dispatch, bench, site)
        if cfg.privacy.secure_aggregation
        else partial(handler, bench, site, on_step=on_step)
        for i, site in enumerate(sites)
    }
    return InProcessGrid(handlers, mods=mods, with_context=True)
