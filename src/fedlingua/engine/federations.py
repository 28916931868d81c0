"""The topology's federations, wired: nodes on a grid, a Flower strategy, the privacy plan.

In-process (the default simulation) every site is a node of one `InProcessGrid`
(`simulation_grid`), bound to the experiment's one workbench; with Flower's grid (the
ServerApp) the SuperNodes are the nodes. Either way the coordinator learns the nodes from
the roll call, and each federation trains on its own nodes of that grid (a `NodeSubset`).
A local topology (one node per model) trains by plain replacement: no strategy choice,
sampling, dropout or measured payloads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from fedlingua.config import ConfigError, FederationConfig
from fedlingua.experiment import Coordinator, Experiment, coordinate
from fedlingua.federation import secagg
from fedlingua.federation.client import handle_train
from fedlingua.federation.fused_grid import FusedGrid
from fedlingua.federation.grid import InProcessGrid, NodeSubset
from fedlingua.federation.mods import train_only
from fedlingua.federation.rollcall import BoundNames
from fedlingua.federation.server import Federation
from fedlingua.federation.site import SiteHandler
from fedlingua.federation.strategies import make_strategy
from fedlingua.privacy.dp import DPPlan, client_mods
from fedlingua.privacy.payload import payload_log_mods

ClientHandler = Callable[..., object]  # signature of `fedlingua.federation.client.handle_train`


def simulation_grid(
    exp: Experiment,
    on_step: Callable[[], None] | None = None,
    client_handler: ClientHandler | None = None,
) -> InProcessGrid:
    """The in-process simulation's grid: one node per simulated site (`Experiment.sites`),
    on this process's one workbench, inside the mods a Flower ClientApp applies (payload
    log outermost, then SecAgg+ and DP). Each node answers the roll call, train and
    evaluate messages as a SuperNode's ClientApp does. With `federation.fuse_clients = K
    > 1` it is a `FusedGrid`, which trains a round's sampled clients K at a time.

    `client_handler` replaces the client update of in-process nodes (same signature as
    `handle_train`): how benchmarks and tests plug in a misbehaving client.
    """
    cfg, bench = exp.cfg, exp.bench
    train = client_handler or handle_train
    if cfg.privacy.secure_aggregation:
        train = _secagg_train
    handlers = {
        i + 1: SiteHandler(bench, site, train, on_step) for i, site in enumerate(exp.sites())
    }
    # the payload log sees every message; privacy mods wrap training, as in the ClientApp
    mods = payload_log_mods() + [train_only(m) for m in client_mods(cfg)]
    if cfg.federation.fuse_clients > 1:
        if client_handler not in (None, handle_train):
            raise ConfigError("federation.fuse_clients > 1 runs the built-in client update only")
        return FusedGrid(bench, handlers, cfg.federation.fuse_clients, on_step, mods)
    return InProcessGrid(handlers, mods=mods, typed=True)


def simulated_coordinator(
    exp: Experiment,
    on_step: Callable[[], None] | None = None,
    client_handler: ClientHandler | None = None,
) -> Coordinator:
    """The in-process simulation's coordinator: the experiment's sites on a
    `simulation_grid`, their roll call, and the experiment's model (shared, not copied)."""
    grid = simulation_grid(exp, on_step, client_handler)
    nodes = len(list(grid.get_node_ids()))
    return coordinate(exp.cfg, grid, backbone=exp.backbone, bench=exp.bench, expected=nodes)


def _secagg_train(bench, site, content, on_step=None, context=None):
    return secagg.dispatch(bench, site, content, context)


def build_federations(coord: Coordinator) -> dict[str, Federation]:
    """Federation name -> a `Federation` (SecAgg+ or plain) starting from the same state,
    each on the nodes of the coordinator's grid that the topology gives it."""
    cfg, topo = coord.cfg, coord.topology
    training = coord.roster.training
    if not topo.local and cfg.federation.min_clients > len(training):
        raise ConfigError(
            f"federation.min_clients={cfg.federation.min_clients} but only "
            f"{len(training)} sites hold training data: no round could ever aggregate"
        )
    # a single node per model: plain replacement (FedAvg of one reply is that reply), no
    # server optimizer, sampling, faults or dropout
    local = FederationConfig(rounds=cfg.federation.rounds, strategy="fedavg")
    fed_cfg = local if topo.local else cfg.federation
    base_config = coord.message_config()
    if topo.local:
        base_config["client-dropout"] = 0.0
    feds = {}
    for name, ids in topo.federations.items():
        names = BoundNames(coord.roster, ids)
        grid = NodeSubset(coord.grid, names.keys)
        feds[name] = _federation(coord, name, len(ids), grid, names, fed_cfg, base_config)
    return feds


def _federation(
    coord: Coordinator,
    name: str,
    num_nodes: int,
    grid: Grid,
    names: Mapping[int, str],
    fed_cfg: FederationConfig,
    base_config: ConfigRecord,
) -> Federation:
    cfg = coord.cfg
    client_lr = float(base_config["lr"])
    init = {k: v.clone() for k, v in coord.bench.get_state().items()}

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
        measure=not coord.topology.local,
        seed_noise=plan.seed_server_noise,
        fresh_noise=plan.fresh_server_noise,
        declared={s.client_id: s.num_examples for s in coord.roster.training},
        check_clipping=plan.client_clipping,
    )
