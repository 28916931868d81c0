"""The roll call: who takes part in a run, learnt from the sites themselves.

The coordinator holds no data. Before the first round it sends every connected node a
QUERY message; each site answers with its identity (`fedlingua.federation.site.identity`):
client id, languages, training examples per language, the languages it evaluates and its
label names. The `Roster` built from the answers is the run's membership: which nodes
train, which evaluate which language, and the label list every node is then sent
(declared in the run config as `data.labels`, else the union of what the sites report,
in client-id order). The in-process simulation calls the same roll call on its grid.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid

from fedlingua.config import ConfigError
from fedlingua.federation.payload import CLIENT_KEY

WAIT_HINT = "wait-for-nodes-s"  # the ServerApp's run-config key that sets the wait


@dataclass(frozen=True)
class SiteInfo:
    """What one node said at the roll call."""

    node_id: int
    client_id: str
    lang: str
    train_sizes: dict[str, int]
    eval_languages: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def num_examples(self) -> int:
        return sum(self.train_sizes.values())

    @property
    def trains(self) -> bool:
        return self.num_examples > 0

    @classmethod
    def from_record(cls, node_id: int, record: ConfigRecord) -> SiteInfo:
        """The identity record of a roll-call reply, checked field by field."""

        def strings(key: str) -> tuple[str, ...]:
            value = record.get(key, [])
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ValueError(f"node {node_id}: roll-call field {key!r} is not a list of names")
            return tuple(value)

        client_id, lang = record.get("client-id"), record.get("lang")
        if not isinstance(client_id, str) or not client_id or not isinstance(lang, str):
            raise ValueError(f"node {node_id}: roll-call reply without a client id and language")
        languages, sizes = strings("languages"), record.get("train-sizes", [])
        if (
            not isinstance(sizes, list)
            or len(sizes) != len(languages)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes)
        ):
            raise ValueError(f"node {node_id}: 'train-sizes' must be one count per language")
        return cls(
            node_id,
            client_id,
            lang,
            dict(zip(languages, sizes, strict=True)),
            strings("eval-languages"),
            strings("labels"),
        )

    def to_dict(self) -> dict:
        return {
            "client_id": self.client_id,
            "lang": self.lang,
            "train_examples": dict(self.train_sizes),
            "eval_languages": list(self.eval_languages),
            "labels": list(self.labels),
        }


@dataclass
class Roster:
    """The sites of a run, in client-id order, each bound to the node that answered for it.

    A client id stays bound to its node: a reply from another node that claims it is
    refused. A site whose SuperNode restarted comes back under a new node id; `rebind`
    moves the binding only when the old node is gone and the new one reports exactly the
    same site (`Coordinator.refresh` asks new nodes before each round)."""

    sites: list[SiteInfo]
    refused: dict[str, str] = field(default_factory=dict)  # "node N" -> why, latest first

    @classmethod
    def of(cls, sites: Sequence[SiteInfo], refused: dict[int, str] | None = None) -> Roster:
        seen: dict[str, int] = {}
        for site in sites:
            if site.client_id in seen:
                raise ConfigError(
                    f"nodes {seen[site.client_id]} and {site.node_id} both answer as client "
                    f"{site.client_id!r}: give each site its own client id"
                )
            seen[site.client_id] = site.node_id
        notes = {f"node {n}": why for n, why in (refused or {}).items()}
        return cls(sorted(sites, key=lambda s: s.client_id), notes)

    @property
    def names(self) -> dict[int, str]:
        """Node id -> client id."""
        return {s.node_id: s.client_id for s in self.sites}

    def node_of(self, client_id: str) -> int:
        return next(s.node_id for s in self.sites if s.client_id == client_id)

    def rebind(self, info: SiteInfo, live: set[int]) -> str:
        """Move `info.client_id` to `info.node_id` if its old node is gone and the new node
        reports the same site; what happened, in words."""
        old = next((s for s in self.sites if s.client_id == info.client_id), None)
        why = None
        if old is None:
            why = f"claims client {info.client_id!r}, which did not answer the roll call"
        elif old.node_id in live:
            why = f"claims client {info.client_id!r}, bound to node {old.node_id}, still online"
        elif (old.train_sizes, old.eval_languages, old.labels) != (
            info.train_sizes,
            info.eval_languages,
            info.labels,
        ):
            why = f"claims client {info.client_id!r} but reports other data than at the roll call"
        if why is not None:
            self.refused[f"node {info.node_id}"] = why
            return f"node {info.node_id} refused: {why}"
        self.sites[self.sites.index(old)] = info
        return f"client {info.client_id} rejoined as node {info.node_id} (was {old.node_id})"

    @property
    def training(self) -> list[SiteInfo]:
        return [s for s in self.sites if s.trains]

    def train_sizes(self) -> dict[str, int]:
        """Training examples per language, summed over the sites."""
        sizes: dict[str, int] = {}
        for site in self.training:
            for lang, n in site.train_sizes.items():
                sizes[lang] = sizes.get(lang, 0) + n
        return sizes

    def eval_languages(self) -> list[str]:
        """Every language some site evaluates: training languages first (in site order),
        then the others (zero-shot) in alphabetical order."""
        evaluated = {x for s in self.sites for x in s.eval_languages}
        trained = [x for x in self.train_sizes() if x in evaluated]
        return trained + sorted(evaluated - set(trained))

    def labels(self, declared: Sequence[str] | None = None) -> tuple[str, ...]:
        """The run's label list: `declared` (every site's labels must be in it), else the
        union of the sites' labels in client-id order."""
        if declared:
            for site in self.sites:
                outside = [x for x in site.labels if x not in declared]
                if outside:
                    raise ConfigError(
                        f"site {site.client_id!r} (node {site.node_id}) has labels {outside} "
                        f"outside data.labels {list(declared)}"
                    )
            return tuple(declared)
        union: dict[str, None] = {}
        for site in self.sites:
            union |= dict.fromkeys(site.labels)
        if not union:
            raise ConfigError("no site reported any label names: declare data.labels")
        return tuple(union)

    def to_dict(self) -> dict:
        """What the run directory records of the roll call (and of nodes refused)."""
        return {"sites": [s.to_dict() for s in self.sites], "refused": dict(self.refused)}


class BoundNames(Mapping[int, str]):
    """Node id -> client id of `clients`, read from the roster at each use: a site that
    rejoined under a new node id is found under that id."""

    def __init__(self, roster: Roster, clients: Sequence[str]) -> None:
        self.roster, self.clients = roster, set(clients)

    def _current(self) -> dict[int, str]:
        return {s.node_id: s.client_id for s in self.roster.sites if s.client_id in self.clients}

    def __getitem__(self, node: int) -> str:
        return self._current()[node]

    def __iter__(self) -> Iterator[int]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


def roll_call(grid: Grid, expected: int | None, wait_s: float) -> Roster:
    """The roster, once `expected` nodes (None: every connected node) have answered.

    A node the SuperLink still lists but that sends no heartbeats (a SuperNode killed just
    before, or one the SuperLink's state kept across its own restart) is answered for by the
    SuperLink with NODE_UNAVAILABLE, or its query is not delivered at all: it is left out,
    and the roll call is repeated until enough nodes have answered or `wait_s` passed. A
    node that answers with an error or a malformed identity is refused (and named if the
    roll call then falls short); it never stops the run by itself.
    """
    deadline = time.monotonic() + wait_s
    while True:
        nodes = _connected(grid, expected or 1, deadline, wait_s)
        # a node answers once it has prepared its site (model + data): allow at least a minute
        infos, missing, refused = ask(grid, nodes, max(deadline - time.monotonic(), 60.0))
        enough = len(infos) >= expected if expected else not missing
        if enough and infos:
            return Roster.of(infos, refused)
        if time.monotonic() > deadline or (refused and not missing):  # no one left to wait for
            reasons = sorted(set(missing.values()) | set(refused.values()))
            raise RuntimeError(
                f"{len(infos)} of {expected or len(nodes)} sites answered the roll call within "
                f"{wait_s:.0f}s, none from nodes {sorted(missing | refused)} "
                f"({'; '.join(reasons)}): raise {WAIT_HINT}"
            )
        time.sleep(2.0)


def _connected(grid: Grid, expected: int, deadline: float, wait_s: float) -> list[int]:
    while len(nodes := list(grid.get_node_ids())) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(nodes)} SuperNode(s) connected after {wait_s:.0f}s; the run expects "
                f"{expected} sites"
            )
        time.sleep(1.0)
    return nodes


def ask(
    grid: Grid, nodes: Sequence[int], timeout: float
) -> tuple[list[SiteInfo], dict[int, str], dict[int, str]]:
    """One roll call of `nodes`: their identities, node -> why it did not answer
    (unavailable, or no answer), and node -> why its answer was refused."""
    asks = [Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY) for n in nodes]
    infos: list[SiteInfo] = []
    refused: dict[int, str] = {}
    why = "no answer"
    for reply in grid.send_and_receive(asks, timeout=timeout):
        node = reply.metadata.src_node_id  # for the SuperLink's own errors: the SuperLink
        if reply.has_error() and reply.error.code == ErrorCode.NODE_UNAVAILABLE:
            why = f"unavailable or no answer: {reply.error.reason}"
        elif reply.has_error():
            refused[node] = f"SuperNode {node} cannot take part: {reply.error.reason}"
        else:
            try:
                record = reply.content.config_records[CLIENT_KEY]
                infos.append(SiteInfo.from_record(node, record))
            except (KeyError, TypeError, ValueError) as exc:
                refused[node] = f"SuperNode {node} answered without a valid identity: {exc}"
    answered = {s.node_id for s in infos} | set(refused)
    return infos, {n: why for n in nodes if n not in answered}, refused
