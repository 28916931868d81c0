"""The topology's federations, wired: nodes on a grid, a Flower strategy, the privacy plan.

In-process (the default simulation) every node is a handler on an `InProcessGrid`,
bound to the experiment's one workbench, inside the client mods a Flower ClientApp
applies (payload log outermost, then privacy). With `federation.fuse_clients = K > 1`
the in-process grid is a `FusedGrid`: it trains the round's sampled clients K at a time
in one fused update (`fedlingua.fused`) and then delivers every message through the same
mods, each handler answering with its precomputed reply, so the server side (sampling,
checks, aggregation, measured payloads) is unchanged. With Flower's grid (the ServerApp)
the SuperNodes play the nodes. A local topology (one node per model) trains by plain
replacement: no strategy choice, sampling, dropout or measured payloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial

from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fedlingua.config import ConfigError
from fedlingua.experiment import Experiment
from fedlingua.federation.client import (
    ClientDropout,
    ClientSite,
    client_seed,
    drops_out,
    handle_train,
    train_config,
)
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.payload import (
    ARRAYS_KEY,
    CLIENT_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    record_to_state,
    state_to_record,
)
from fedlingua.federation.server import Federation
from fedlingua.federation.strategies import make_strategy
from fedlingua.training import UpdateResult, Workbench

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
    mods = payload_log_mods() + dp.client_mods(cfg)
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
    # the mods a Flower ClientApp applies: payload log (outermost), then privacy
    return InProcessGrid(handlers, mods=mods)


class FusedGrid(InProcessGrid):
    """An in-process grid whose train messages are answered K clients at a time.

    `send_and_receive` first trains the addressed clients together (`fused_local_update`,
    in chunks of `k` in message order), then delivers each message as `InProcessGrid`
    does, through the client mods; the node's handler returns the reply computed for it
    (or raises what its client raised: a dropout, a malformed state).
    """

    def __init__(
        self,
        bench: Workbench,
        sites: list[ClientSite],
        k: int,
        on_step: Callable[[], None] | None,
        mods: Sequence = (),
    ) -> None:
        handlers = {i + 1: partial(self._answer, i + 1) for i in range(len(sites))}
        super().__init__(handlers, mods=mods)
        self._bench, self._k, self._on_step = bench, k, on_step
        self._sites = {i + 1: site for i, site in enumerate(sites)}
        self._ready: dict[int, RecordDict | Exception] = {}

    def send_and_receive(self, messages: Iterable[Message], *, timeout=None) -> list[Message]:
        messages = list(messages)
        train = [m for m in messages if m.metadata.message_type.startswith("train")]
        for i in range(0, len(train), self._k):
            self._ready.update(self._train_together(train[i : i + self._k]))
        return list(super().send_and_receive(messages, timeout=timeout))

    def _answer(self, node: int, content: RecordDict) -> RecordDict:
        if node not in self._ready:  # not a train message: the plain client handler
            return handle_train(self._bench, self._sites[node], content, self._on_step)
        outcome = self._ready.pop(node)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _train_together(self, chunk: list[Message]) -> dict[int, RecordDict | Exception]:
        from fedlingua.fused import fused_local_update

        outcomes: dict[int, RecordDict | Exception] = {}
        jobs = []  # (node, state, seed)
        model = self._bench.model
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}
        for msg in chunk:
            node = msg.metadata.dst_node_id
            try:
                seed = _client_seed(msg.content[CONFIG_KEY], self._sites[node].client_id)
                jobs.append((node, record_to_state(msg.content[ARRAYS_KEY], shapes), seed))
            except Exception as exc:  # the reply the plain handler would have raised
                outcomes[node] = exc
        if not jobs:
            return outcomes
        config = next(m.content[CONFIG_KEY] for m in chunk if m.metadata.dst_node_id == jobs[0][0])
        try:
            results = fused_local_update(
                self._bench,
                [state for _, state, _ in jobs],
                [self._sites[node].train for node, _, _ in jobs],
                [seed for _, _, seed in jobs],
                on_step=self._on_step,
                **update_arguments(config),
            )
        except Exception as exc:  # every client of the chunk fails, as its ClientApp would
            return outcomes | {node: exc for node, _, _ in jobs}
        for (node, _, _), result in zip(jobs, results, strict=True):
            outcomes[node] = _reply(self._sites[node], result)
        return outcomes


def _client_seed(config: ConfigRecord, client_id: str) -> int:
    """The client's training seed; raises `ClientDropout` as `handle_train` does."""
    server_round, seed = int(config["server-round"]), int(config["seed"])
    if drops_out(seed, server_round, client_id, float(config["client-dropout"])):
        raise ClientDropout(f"client {client_id} dropped out in round {server_round}")
    return client_seed(seed, server_round, client_id)


def update_arguments(config: ConfigRecord) -> dict:
    """`local_update`'s hyper-parameters from a train config (as `handle_train` reads them)."""
    return dict(
        epochs=int(config["local-epochs"]),
        max_steps=int(config.get("local-steps", 0)) or None,
        batch_size=int(config["batch-size"]),
        lr=float(config["lr"]),
        weight_decay=float(config["weight-decay"]),
        max_grad_norm=float(config["max-grad-norm"]),
        proximal_mu=float(config.get("proximal-mu", 0.0)),
        optimizer=str(config.get("optimizer", "adamw")),
        momentum=float(config.get("momentum", 0.0)),
        logit_adjustment=float(config.get("logit-adjustment", 0.0)),
    )


def _reply(site: ClientSite, result: UpdateResult) -> RecordDict:
    """The reply content `handle_train` sends for `result`."""
    metrics = MetricRecord(
        {
            "num-examples": result.num_examples,
            "train-loss": result.loss_mean,
            "train-loss-last": result.loss_last,
            "steps": result.steps,
            "compute-s": result.compute_s,
        }
    )
    identity = ConfigRecord({"client-id": site.client_id, "lang": site.lang})
    return RecordDict(
        {ARRAYS_KEY: state_to_record(result.state), METRICS_KEY: metrics, CLIENT_KEY: identity}
    )
