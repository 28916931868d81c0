"""Fused client updates: K clients' local steps share one pass of the frozen backbone.

For the prompt methods a client's trainable state is its prompt module (P-tuning's
prompt encoder, or the soft prompt's embedding table) and its classification head;
the backbone is frozen and the same for everyone. So K clients can take a step
together: each client's own tensors produce its virtual tokens (through the shared
prompt module, called with that client's parameters by `torch.func.functional_call`),
the virtual tokens are prepended to the client's rows exactly as PEFT's
`PeftModelForSequenceClassification` does, the backbone runs ONCE over the
concatenated rows, each client's head scores its own rows, and the summed loss
backpropagates. A client's tensors only touch its own rows, so the gradient of the sum
with respect to them is the gradient of that client's own loss; each client then clips
and steps its own optimizer. A client that ran out of batches stops contributing rows.

With dropout off this equals `training.local_update` run client after client, up to
float reassociation (rows padded to a common width, batched products of another
shape); see tests/test_fused.py for the tolerance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from fedlingua.data import EncodedSplit
from fedlingua.training import (
    State,
    UpdateResult,
    Workbench,
    client_loss,
    client_shift,
    make_optimizer,
    proximal_anchors,
    training_batches,
    update_result,
)

PROMPT = "prompt_encoder.default."  # PEFT's prompt module of the (only) adapter
HEAD = "base_model.classifier.modules_to_save.default."  # the head PEFT trains and saves


@dataclass
class _Client:
    """One client of a fused update: its own tensors, optimizer and batch stream."""

    params: dict[str, torch.Tensor]  # bench.names order, leaf tensors on the device
    opt: torch.optim.Optimizer
    batches: Iterator[dict[str, torch.Tensor]]
    shift: torch.Tensor | None
    anchors: list[torch.Tensor] | None
    losses: list[torch.Tensor] = field(default_factory=list)

    def sub(self, prefix: str) -> dict[str, torch.Tensor]:
        """This client's tensors of the module at `prefix`, keyed as that module names them."""
        return {n[len(prefix) :]: t for n, t in self.params.items() if n.startswith(prefix)}


def can_fuse(bench: Workbench) -> bool:
    """Does the workbench's trainable state split into a prompt module and a head?"""
    return bench.method.virtual_tokens > 0 and all(
        n.startswith((PROMPT, HEAD)) for n in bench.names
    )


def fused_local_update(
    bench: Workbench,
    states: list[State],
    datasets: list[EncodedSplit],
    seeds: list[int],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
    proximal_mu: float = 0.0,
    max_steps: int | None = None,
    optimizer: str = "adamw",
    momentum: float = 0.9,
    logit_adjustment: float = 0.0,
    on_step: Callable[[], None] | None = None,
) -> list[UpdateResult]:
    """`local_update` of every (state, data, seed) at once; one result per client, in order.

    Hyper-parameters are those of `training.local_update` and shared by the clients (one
    round's train config). Each client's `compute_s` is its share of the fused wall time.
    """
    if not can_fuse(bench):
        raise ValueError(f"method {bench.method.name!r} cannot fuse clients (prompt methods can)")
    if any(len(d) == 0 for d in datasets):
        raise ValueError("fused_local_update got a client with no training examples")
    start = time.perf_counter()
    model = bench.model
    model.train()
    hyper = dict(lr=lr, weight_decay=weight_decay, momentum=momentum)
    schedule = dict(batch_size=batch_size, epochs=epochs, max_steps=max_steps)
    clients = [
        _client(bench, state, data, seed, optimizer, hyper, schedule, proximal_mu, logit_adjustment)
        for state, data, seed in zip(states, datasets, seeds, strict=True)
    ]
    torch.manual_seed(seeds[0])  # dropout draws (a fused run equals a sequential one without)
    with bench.matmuls():
        while active := [(c, b) for c in clients if (b := next(c.batches, None)) is not None]:
            _fused_step(bench, active, proximal_mu, max_grad_norm)
            for _ in active:
                if on_step is not None:
                    on_step()
    model.eval()
    share = (time.perf_counter() - start) / len(clients)
    return [
        update_result(_cpu_state(c), len(d), c.losses, share)
        for c, d in zip(clients, datasets, strict=True)
    ]


def _client(
    bench: Workbench,
    state: State,
    data: EncodedSplit,
    seed: int,
    optimizer: str,
    hyper: dict,
    schedule: dict,
    proximal_mu: float,
    logit_adjustment: float,
) -> _Client:
    """A client's own copy of its tensors on the device, its optimizer and batch stream."""
    params = {n: state[n].to(bench.device, torch.float32, copy=True) for n in bench.names}
    for t in params.values():
        t.requires_grad_(True)
    opt = make_optimizer(optimizer, list(params.values()), **hyper)
    anchors = proximal_anchors(bench, state, proximal_mu)
    s = schedule
    batches = training_batches(
        data, s["batch_size"], bench.pad_id, seed, s["epochs"], s["max_steps"]
    )
    shift = client_shift(bench, data, logit_adjustment)
    return _Client(params, opt, map(bench.batch, batches), shift, anchors)


def _fused_step(
    bench: Workbench,
    active: list[tuple[_Client, dict[str, torch.Tensor]]],
    proximal_mu: float,
    max_grad_norm: float,
) -> None:
    """One optimizer step of every active client, through one backbone pass."""
    logits = _forward(bench, active)
    total = None
    for (c, batch), out in zip(active, logits, strict=True):
        loss = client_loss(out, batch["labels"], c.shift, c.params.values(), c.anchors, proximal_mu)
        c.losses.append(loss.detach())
        total = loss if total is None else total + loss
    for c, _ in active:
        c.opt.zero_grad(set_to_none=True)
    total.backward()
    for c, _ in active:
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(list(c.params.values()), max_grad_norm)
        c.opt.step()


def _forward(
    bench: Workbench, active: list[tuple[_Client, dict[str, torch.Tensor]]]
) -> list[torch.Tensor]:
    """fp32 logits of every active client's batch (what PEFT + `SequenceClassifier` compute)."""
    model = bench.model
    classifier = model.get_base_model()
    prompt_module = model.get_submodule(PROMPT[:-1])
    head = model.get_submodule(HEAD[:-1])
    virtual = bench.method.virtual_tokens
    ids, mask = _concat([b for _, b in active], bench.pad_id)
    rows = ids.shape[0]
    with bench.autocast():
        embeds = model.word_embeddings(ids)
        tokens = model.prompt_tokens["default"].unsqueeze(0)[:1].to(ids.device)
        prompts = torch.cat(
            [
                functional_call(prompt_module, c.sub(PROMPT), (tokens,)).repeat(
                    b["input_ids"].shape[0], 1, 1
                )
                for c, b in active
            ]
        )
        embeds = torch.cat((prompts.to(embeds.dtype), embeds), dim=1)
        mask = torch.cat((torch.ones(rows, virtual).to(mask.device), mask), dim=1)
        hidden = classifier.encoder(
            inputs_embeds=embeds, attention_mask=mask, return_dict=True
        ).last_hidden_state
    with torch.autocast(device_type=hidden.device.type, enabled=False):  # head and loss in fp32
        pooled = classifier.pool(hidden, mask)
        out, row = [], 0
        for c, b in active:
            n = b["input_ids"].shape[0]
            part = classifier.dropout(pooled[row : row + n].to(torch.float32))
            out.append(functional_call(head, c.sub(HEAD), (part,)).float())
            row += n
    return out


def _concat(
    batches: list[dict[str, torch.Tensor]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask of all batches, right-padded to the widest."""
    width = max(b["input_ids"].shape[1] for b in batches)

    def pad(t: torch.Tensor, value: int) -> torch.Tensor:
        return nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    ids = torch.cat([pad(b["input_ids"], pad_id) for b in batches])
    mask = torch.cat([pad(b["attention_mask"], 0) for b in batches])
    return ids, mask


def _cpu_state(client: _Client) -> State:
    """The client's tensors as the CPU fp32 copies `Workbench.get_state` returns."""
    return {n: t.detach().to("cpu", torch.float32).clone() for n, t in client.params.items()}
