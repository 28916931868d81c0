"""What a client sends, audited: a log of every outgoing message, and a checker for it.

With `FEDLINGUA_PAYLOAD_LOG=<folder>` in its environment, every client -- simulated
in-process, or a Flower ClientApp process under `flwr run` -- writes each message it
sends to that folder before it leaves: the reply content serialized exactly as Flower
sends it (protobuf bytes, `*.pb`), or an error reply's code and reason (`*.error.json`).
The log is the outermost client mod, so it sees what leaves after every other mod
(differential-privacy noise, SecAgg+ masking).

`audit_reply` checks one logged reply against what a fedlingua client may send:

* records: exactly `arrays` (ArrayRecord), `metrics` (MetricRecord), `client` (ConfigRecord);
* arrays: exactly the declared trainable tensor names, with their shapes, floating point;
* metrics: only the declared scalar metrics (num-examples, losses, steps, seconds; the
  DP clipping mods' norm bit), each a single number, no lists;
* client: exactly {client-id, lang}, two short strings naming a known client;
* and no training text anywhere in the serialized bytes.

`audit_evaluate_reply` checks an evaluation reply: only `metrics` (confusion-matrix
counts per requested model, language and split, each a list of non-negative integers,
and the compute time) and `client` ({client-id}); a roll-call reply holds only the
site's identity (client id, language codes, training examples per language, evaluated
languages, label names).

So no text, token ids (integer arrays), labels or per-example values can leave a client
without failing the audit. Under SecAgg+ (`privacy.secure_aggregation`) a client's
messages follow Flower's protocol instead, and `audit_secagg_reply` checks that contract:
no tensor at all (every ArrayRecord empty), only the protocol's keys (public keys,
encrypted key shares, the masked integer vector, node ids), the declared scalar metrics
and example count, and no training text. `audit_log` runs the right check over a whole
folder.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from fedlingua.federation.payload import ARRAYS_KEY, CLIENT_KEY, METRICS_KEY, deserialize, serialize

ENV = "FEDLINGUA_PAYLOAD_LOG"
CLIENT_METRICS = frozenset({"num-examples", "train-loss", "train-loss-last", "steps", "compute-s"})
DP_METRICS = frozenset({"norm_bit"})  # Flower's adaptiveclipping_mod: was the update clipped
IDENTITY_KEYS = frozenset({"client-id", "lang"})
ROLL_CALL_KEYS = IDENTITY_KEYS | {"languages", "train-sizes", "eval-languages", "labels"}


class PayloadLog:
    """Client mod: write every reply this client sends into `folder` (see module doc)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def __call__(self, msg: Message, ctx: Context, call_next) -> Message:
        reply = call_next(msg, ctx)
        self.write(msg, reply, ctx)
        return reply

    def write(self, msg: Message, reply: Message, ctx: Context) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        kind = str(msg.metadata.message_type).replace(".", "-")
        stem = f"{kind}-node{ctx.node_id}-g{msg.metadata.group_id or 0}-{uuid.uuid4().hex[:12]}"
        if reply.has_error():
            path = self.folder / f"{stem}.error.json"
            data = json.dumps({"code": reply.error.code, "reason": reply.error.reason}).encode()
        else:
            path = self.folder / f"{stem}.pb"
            data = serialize(reply.content)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path


def payload_log_mods() -> list[PayloadLog]:
    """[PayloadLog] when $FEDLINGUA_PAYLOAD_LOG names a folder, else []."""
    folder = os.environ.get(ENV, "").strip()
    return [PayloadLog(folder)] if folder else []


@dataclass
class Declared:
    """What a client may send: trainable tensor shapes, metric names, client identities."""

    arrays: Mapping[str, tuple[int, ...]]
    identities: Mapping[str, str]  # client id -> language
    metrics: frozenset[str] = field(default=CLIENT_METRICS | DP_METRICS)


def audit_reply(content: RecordDict, declared: Declared, texts: Iterable[bytes] = ()) -> list[str]:
    """Violations of the client payload contract in one reply's content (empty: clean)."""
    problems: list[str] = []
    keys = set(content.keys())
    expected_keys = {ARRAYS_KEY, METRICS_KEY, CLIENT_KEY}
    if keys != expected_keys:
        problems.append(f"records {sorted(keys)}, expected {sorted(expected_keys)}")
    arrays = content.get(ARRAYS_KEY)
    if not isinstance(arrays, ArrayRecord):
        problems.append(f"{ARRAYS_KEY} is not an ArrayRecord")
    else:
        names = set(arrays.keys())
        if names != set(declared.arrays):
            extra = sorted(names - set(declared.arrays))[:3]
            missing = sorted(set(declared.arrays) - names)[:3]
            problems.append(f"tensor names differ: unexpected {extra}, missing {missing}")
        for name, array in arrays.items():
            nd = array.numpy()
            if name in declared.arrays and tuple(nd.shape) != tuple(declared.arrays[name]):
                problems.append(f"{name}: shape {nd.shape}, declared {declared.arrays[name]}")
            if nd.dtype.kind != "f":
                problems.append(f"{name}: dtype {nd.dtype} (only floating-point tensors travel)")
    metrics = content.get(METRICS_KEY)
    if not isinstance(metrics, MetricRecord):
        problems.append(f"{METRICS_KEY} is not a MetricRecord")
    else:
        problems += _metric_problems(metrics, declared)
    identity = content.get(CLIENT_KEY)
    if not isinstance(identity, ConfigRecord):
        problems.append(f"{CLIENT_KEY} is not a ConfigRecord")
    else:
        if set(identity.keys()) != IDENTITY_KEYS:
            problems.append(f"identity keys {sorted(identity.keys())}")
        cid, lang = identity.get("client-id"), identity.get("lang")
        if declared.identities.get(cid) != lang:  # type: ignore[arg-type]
            problems.append(f"identity {cid!r}/{lang!r} is not a declared client")
    return problems + _text_problems(content, texts)


SECAGG_RECORD = "secaggplus_configs"
SECAGG_KEYS = frozenset(
    {"pk1", "pk2", "dsts", "ctxts", "masked_params", "nids", "shares"}  # what clients send
)


def audit_secagg_reply(
    content: RecordDict, declared: Declared, texts: Iterable[bytes] = ()
) -> list[str]:
    """Violations of the SecAgg+ client contract in one reply's content (empty: clean)."""
    problems: list[str] = []
    for name, record in content.array_records.items():
        if len(record):
            problems.append(f"tensors in clear: ArrayRecord {name!r} holds {list(record)[:3]}")
    allowed_configs = {SECAGG_RECORD, "fitres.metrics", "fitres.status"}
    extra = set(content.config_records) - allowed_configs
    extra |= set(content.metric_records) - {"fitres.num_examples"}
    if extra:
        problems.append(f"records outside the SecAgg+ protocol: {sorted(extra)}")
    protocol = content.config_records.get(SECAGG_RECORD)
    if protocol is None:
        problems.append(f"no {SECAGG_RECORD!r} record")
    else:
        unknown = set(protocol) - SECAGG_KEYS
        if unknown:
            problems.append(f"unexpected SecAgg+ keys {sorted(unknown)}")
    problems += _metric_problems(content.config_records.get("fitres.metrics") or {}, declared)
    return problems + _text_problems(content, texts)


def _metric_problems(metrics: Mapping, declared: Declared) -> list[str]:
    """Undeclared metric names and values that are not one number."""
    problems = []
    for key, value in metrics.items():
        if key not in declared.metrics:
            problems.append(f"undeclared metric {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"metric {key!r} is {type(value).__name__}, not one number")
    return problems


def _text_problems(content: RecordDict, texts: Iterable[bytes]) -> list[str]:
    """The first training text found verbatim in the serialized payload, if any."""
    blob = serialize(content)
    for text in texts:
        if text in blob:
            return [f"training text {text[:40]!r} appears in the payload"]
    return []


def text_needles(texts: Iterable[str], min_bytes: int = 8) -> list[bytes]:
    """UTF-8 needles for the text search (shorter ones could match float bytes by chance)."""
    return sorted({t.encode() for t in texts if len(t.encode()) >= min_bytes})


@dataclass
class LogAudit:
    replies: int = 0
    errors: int = 0
    secagg: int = 0  # replies that followed the SecAgg+ protocol
    by_kind: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)


def audit_log(
    folder: str | os.PathLike,
    declared: Declared,
    texts: Iterable[bytes] = (),
    *,
    query_kinds: tuple[str, ...] = ("query",),
) -> LogAudit:
    """Audit every message logged in `folder`: train and evaluate replies fully, roll-call
    replies (QUERY: identity only) and error reasons (no training text, no more than a
    message)."""
    texts = list(texts)
    out = LogAudit()
    for path in sorted(Path(folder).iterdir()):
        if path.suffix == ".tmp":
            continue
        kind = path.name.split("-node", 1)[0]
        out.by_kind[kind] = out.by_kind.get(kind, 0) + 1
        problems: list[str] = []
        if path.name.endswith(".error.json"):
            out.errors += 1
            reason = json.loads(path.read_text())["reason"].encode()
            problems = [
                f"error reason holds training text {t[:40]!r}" for t in texts if t in reason
            ]
        else:
            out.replies += 1
            content = deserialize(path.read_bytes())
            if kind in query_kinds:
                problems = _audit_identity_only(content, declared)
            elif kind == "evaluate":
                problems = audit_evaluate_reply(content, declared, texts)
            elif SECAGG_RECORD in content.config_records:
                problems = audit_secagg_reply(content, declared, texts)
                out.secagg += 1
            else:
                problems = audit_reply(content, declared, texts)
        if problems:
            out.problems[path.name] = problems
    return out


def _audit_identity_only(content: RecordDict, declared: Declared) -> list[str]:
    if set(content.keys()) != {CLIENT_KEY}:
        return [f"roll-call reply holds {sorted(content.keys())}, expected only {CLIENT_KEY!r}"]
    identity = content[CLIENT_KEY]
    if set(identity.keys()) != ROLL_CALL_KEYS:
        return [f"identity keys {sorted(identity.keys())}"]
    if declared.identities.get(identity["client-id"]) != identity["lang"]:  # type: ignore[arg-type]
        return [f"identity {identity['client-id']!r} is not a declared client"]
    sizes = identity["train-sizes"]
    if not isinstance(sizes, list) or not all(isinstance(n, int) for n in sizes):
        return ["train-sizes is not a list of counts"]
    return []


def audit_evaluate_reply(
    content: RecordDict, declared: Declared, texts: Iterable[bytes] = ()
) -> list[str]:
    """Violations of the evaluation-reply contract (counts only) in one reply's content."""
    if set(content.keys()) != {METRICS_KEY, CLIENT_KEY}:
        return [f"evaluation reply holds {sorted(content.keys())}"]
    problems = []
    for key, value in content[METRICS_KEY].items():
        if key == "compute-s":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append("compute-s is not one number")
        elif not key.startswith("confusion/"):
            problems.append(f"undeclared evaluation metric {key!r}")
        elif not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            problems.append(f"{key} is not a list of counts")
    identity = content[CLIENT_KEY]
    if set(identity.keys()) != {"client-id"} or identity["client-id"] not in declared.identities:
        problems.append(f"evaluation identity {dict(identity)} is not a declared client")
    return problems + _text_problems(content, texts)
