"""The topology's federations, wired: nodes on a grid, a Flower strategy, the privacy plan.

In-process (the default simulation) every node is a handler on an `InProcessGrid`,
bound to the experiment's one workbench, inside the client mods a Flower ClientApp
applies (payload log outermost, then privacy). With Flower's grid (the ServerApp) the
SuperNodes play the nodes. A local topology (one node per model) trains by plain
replacement: no strategy choice, sampling, dropout or measured payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from fedlingua.config import ConfigError
from fedlingua.experiment import Experiment
from fedlingua.federation.client import ClientSite, handle_train, train_config
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.server import Federation
from fedlingua.federation.strategies import make_strategy

ClientHandler = Callable[..., object]  # signature of `fedlingua.federation.client.handle_train`


def build_federations(
    exp: Experiment,
    on_step: Callable[[], None] | None = None,
    *,
    grid: Grid | None = None,
    node_names: dict[int, str] | None = None,
    client_handler: ClientHandler | None = None,
) -> dict:
    """Federation name -> a `Federation` (or SecAgg+ federation) starting from the same state.

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
    from fedlingua.privacy import dp, secagg

    bench = exp.bench
    handler = client_handler or handle_train
    lr = cfg.train.lr or bench.method.default_lr
    init = bench.get_state()
    z = dp.noise_multiplier(cfg)
    feds = {}
    secure = cfg.privacy.secure_aggregation
    fed_cfg = type(cfg.federation)(rounds=cfg.federation.rounds) if topo.local else cfg.federation
    base_config = train_config(cfg, lr)
    if topo.local:
        base_config["client-dropout"] = 0.0
    for name, sites in topo.federations.items():
        if grid is None:
            fed_grid = _in_process_grid(exp, sites, handler, on_step)
            names = {i + 1: s.client_id for i, s in enumerate(sites)}
        else:  # Flower's grid (the ServerApp): its SuperNodes play the clients
            fed_grid, names = grid, dict(node_names or {})
        if secure:  # Flower's SecAgg+ workflow: the server obtains only the sum
            feds[name] = secagg.SecAggFederation(
                name,
                fed_grid,
                {k: v.clone() for k, v in init.items()},
                lambda rnd, c=base_config: ConfigRecord(dict(c)),
                seed=cfg.seed,
                privacy=cfg.privacy,
                fraction=fed_cfg.fraction,
                node_names=names,
                rounds=fed_cfg.rounds,
            )
            continue
        feds[name] = Federation(
            name,
            make_strategy(fed_cfg, len(sites), cfg.privacy, z),
            fed_grid,
            {k: v.clone() for k, v in init.items()},
            lambda rnd, c=base_config: ConfigRecord(dict(c)),
            seed=cfg.seed,
            node_names=names,
            timeout=fed_cfg.round_timeout,
            min_clients=fed_cfg.min_clients,
            measure=not topo.local,
            seed_noise=cfg.privacy.dp.startswith("central") and cfg.privacy.seeded_noise,
        )
    return feds


def _in_process_grid(
    exp: Experiment,
    sites: list[ClientSite],
    handler: ClientHandler,
    on_step: Callable[[], None] | None,
) -> InProcessGrid:
    """Nodes 1..N on this process's workbench, inside the mods a Flower ClientApp applies."""
    from fedlingua.privacy import dp, secagg
    from fedlingua.privacy.payload import payload_log_mods

    cfg, bench = exp.cfg, exp.bench
    handlers = {
        i + 1: partial(secagg.dispatch, bench, site)
        if cfg.privacy.secure_aggregation
        else partial(handler, bench, site, on_step=on_step)
        for i, site in enumerate(sites)
    }
    # the mods a Flower ClientApp applies: payload log (outermost), then privacy
    return InProcessGrid(handlers, mods=payload_log_mods() + dp.client_mods(cfg))
