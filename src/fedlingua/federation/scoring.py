"""Federated evaluation, the server side: sites score models on their own rows, the server
adds up their counts.

The server sends each site that holds dev/test rows an EVALUATE message with the models
it should score and on which of its languages (pairs of model and language) and splits.
The site replies with a confusion matrix per pair and split
(`fedlingua.federation.site.handle_evaluate`). Replies are checked like training replies
(a malformed, negative, non-integer or oversized count refuses the whole reply) and
summed per (split, model, language): the sum is exactly the confusion matrix of the
language's rows pooled, so accuracy, macro-F1, per-class recall and `never_predicted`
are the ones a single process holding every row would compute. A site that fails or does
not reply is recorded, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from fedlingua.federation.payload import METRICS_KEY, state_to_record
from fedlingua.federation.rollcall import Roster, SiteInfo
from fedlingua.federation.server import exchange
from fedlingua.federation.site import MODEL_PREFIX, confusion_key
from fedlingua.training import State

Pair = tuple[str, str]  # (model name, language)
MAX_COUNT = 2**40  # no evaluation split holds more rows


@dataclass
class EvaluationOutcome:
    """Confusion matrices summed over the sites, per (split, model, language)."""

    counts: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # client id -> why
    compute_s: float = 0.0

    def add(self, split: str, model: str, lang: str, counts: np.ndarray) -> None:
        key = (split, model, lang)
        self.counts[key] = self.counts.get(key, 0) + counts


class FederatedEvaluation:
    """Asks the sites of `roster` (on `grid`) to score models; sums their counts."""

    def __init__(
        self,
        grid: Grid,
        roster: Roster,
        labels: tuple[str, ...],
        config: ConfigRecord,
        *,
        timeout: float | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.grid, self.roster, self.labels = grid, roster, labels
        self.config, self.timeout, self.poll_s = config, timeout, poll_s

    def request(
        self,
        states: Mapping[str, State],
        pairs_for: Callable[[SiteInfo], list[Pair]],
        splits: list[str],
        *,
        language_prior: bool = False,
        personalize: int = 0,
    ) -> EvaluationOutcome:
        """Every site's counts for the pairs `pairs_for(site)` names, on `splits`."""
        records = {name: state_to_record(state) for name, state in states.items()}
        messages, asked = [], {}
        for site in self.roster.sites:
            pairs = [(m, x) for m, x in pairs_for(site) if m in states]
            if not pairs:
                continue
            config = ConfigRecord(dict(self.config))
            config["models"] = [m for m, _ in pairs]
            config["languages"] = [x for _, x in pairs]
            config["splits"] = list(splits)
            config["language-prior"] = bool(language_prior)
            config["personalize-steps"] = int(personalize)
            content = RecordDict({"config": config})
            for name in dict.fromkeys(m for m, _ in pairs):
                content[MODEL_PREFIX + name] = records[name]
            messages.append(
                Message(content, dst_node_id=site.node_id, message_type=MessageType.EVALUATE)
            )
            asked[site.node_id] = pairs
        replies, sent = exchange(self.grid, messages, self.timeout, self.poll_s)
        return self._collect(replies, sent, asked, splits)

    def _collect(
        self, replies: list[Message], sent: dict[str, int], asked: dict, splits: list[str]
    ) -> EvaluationOutcome:
        out = EvaluationOutcome()
        names = self.roster.names
        answered = set()
        for reply in replies:
            node = sent.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
            answered.add(node)
            who = names.get(node, f"node-{node}")
            if reply.has_error():
                out.failed[who] = reply.error.reason
                continue
            try:
                parsed, compute = parse_counts(reply.content, asked[node], splits, len(self.labels))
            except (KeyError, TypeError, ValueError) as exc:
                out.failed[who] = f"rejected evaluation reply: {exc}"
                continue
            for (split, model, lang), counts in parsed.items():
                out.add(split, model, lang, counts)
            out.compute_s += compute
        for node in asked:
            if node not in answered:
                out.failed[names.get(node, f"node-{node}")] = (
                    "no evaluation reply before the timeout"
                )
        return out


def parse_counts(
    content: RecordDict, pairs: list[Pair], splits: list[str], k: int
) -> tuple[dict[tuple[str, str, str], np.ndarray], float]:
    """The confusion matrices of one evaluation reply, checked: exactly the requested keys,
    each k*k non-negative integers within bounds; and the site's compute time."""
    metrics = content.metric_records[METRICS_KEY]
    wanted = {confusion_key(s, i) for s in splits for i in range(len(pairs))}
    extra = set(metrics) - wanted - {"compute-s"}
    if extra:
        raise ValueError(f"unexpected keys {sorted(extra)[:5]}")
    out = {}
    for split in splits:
        for i, (model, lang) in enumerate(pairs):
            values = metrics[confusion_key(split, i)]
            if not isinstance(values, list) or len(values) != k * k:
                raise ValueError(f"counts of {lang}/{split} are not {k}x{k}")
            if not all(type(v) is int and 0 <= v < MAX_COUNT for v in values):
                raise ValueError(f"counts of {lang}/{split} are not non-negative integers")
            out[(split, model, lang)] = np.asarray(values, dtype=np.int64).reshape(k, k)
    compute = metrics.get("compute-s", 0.0)
    if type(compute) not in (int, float) or not math.isfinite(compute) or compute < 0:
        raise ValueError("compute-s is not a finite non-negative number")
    return out, float(compute)
