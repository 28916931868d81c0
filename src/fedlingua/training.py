"""The one place that trains and predicts: a client update and batched inference.

A `Workbench` is one wrapped model per process (frozen backbone + method).
Every client, language model or pooled model of a run is a different set of
trainable tensors swapped into that same workbench, so N simulated clients
cost one backbone plus N small states. `local_update` is the client update
used by the in-process simulation and by the Flower ClientApp alike.

The workbench lives on one device (`model.device`): the model, every batch, the
trainable tensors and the optimizer state are there; states enter and leave as CPU
tensors (`get_state` copies out, `set_state` copies in), so what is serialized,
aggregated or saved never holds a device tensor.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from fedlingua.config import RunConfig
from fedlingua.data import EncodedSplit, iterate_batches
from fedlingua.data.batching import to_device
from fedlingua.methods import (
    Method,
    ParameterCount,
    count_parameters,
    get_trainable,
    make_method,
    set_trainable,
    trainable_names,
)
from fedlingua.models import Backbone, SequenceClassifier
from fedlingua.runtime import (
    cuda_tf32_matmuls,
    onednn_fp32_matmuls,
    resolve_device,
    resolve_precision,
)

State = dict[str, torch.Tensor]


# Attention kernels on CUDA: flash or memory-efficient, never cuDNN's, which plans each new
# input shape anew, while padded batches change shape at almost every step. On an H200 a
# sequential bf16 round of 30 clients took 15.2 s without it, 24.4 s with it
# (benchmarks/results/gpu_check.md).
CUDA_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@dataclass
class Workbench:
    """A wrapped model and what is needed to train, swap and evaluate its trainable state."""

    model: nn.Module
    method: Method
    names: list[str]
    pad_id: int
    precision: str = "fp32"
    params: ParameterCount = field(default=None)  # type: ignore[assignment]
    num_labels: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def get_state(self) -> State:
        return get_trainable(self.model, self.names)

    def set_state(self, state: State) -> None:
        set_trainable(self.model, state)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context of a forward pass: bf16 autocast (on the workbench's device), or oneDNN
        fp32 matrix products."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return self.matmuls()

    def eval_attention(self) -> contextlib.AbstractContextManager:
        """Attention kernel of evaluation. On the CPU, PyTorch's math kernel: its fused
        (flash) kernel with a padding mask ran e5-small's evaluation slower at the short
        lengths measured (training already takes the math kernel: dropout). On CUDA, the
        kernels of `CUDA_ATTENTION`."""
        if self.device.type == "cpu":
            return sdpa_kernel(SDPBackend.MATH)
        if self.device.type == "cuda":
            return sdpa_kernel(CUDA_ATTENTION)
        return contextlib.nullcontext()

    def matmuls(self) -> contextlib.AbstractContextManager:
        """Context of whole training steps (forward and backward): the oneDNN fp32
        matrix-product mode for 'fp32-onednn' (CPU); on CUDA the attention kernels of
        `CUDA_ATTENTION`, plus TF32 for what bf16 autocast leaves in fp32."""
        if self.precision == "fp32-onednn":
            return onednn_fp32_matmuls()
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return _cuda_step(tf32=self.precision == "bf16")

    def batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A CPU batch on the workbench's device."""
        return to_device(batch, self.device)


@contextlib.contextmanager
def _cuda_step(*, tf32: bool) -> Iterator[None]:
    """A CUDA training step: the attention kernels of `CUDA_ATTENTION`, TF32 if `tf32`."""
    with sdpa_kernel(CUDA_ATTENTION), cuda_tf32_matmuls() if tf32 else contextlib.nullcontext():
        yield


def build_workbench(
    backbone: Backbone,
    num_labels: int,
    cfg: RunConfig,
    *,
    copy_encoder: bool = True,
    device: torch.device | str | None = None,
) -> Workbench:
    """Wrap (a private copy of) the backbone's encoder with the configured method, on
    `device` (default: `cfg.model.device`).

    The copy keeps the caller's backbone pristine: LoRA injects layers into the
    encoder and full fine-tuning changes its weights, so one loaded backbone can
    serve several runs (e.g. the rows of `compare`). The head and the method's
    new parameters are initialised from `cfg.seed`, so every paradigm starts from
    the same state.
    """
    encoder = copy.deepcopy(backbone.encoder) if copy_encoder else backbone.encoder
    for p in encoder.parameters():
        p.requires_grad_(False)
    torch.manual_seed(cfg.seed)
    classifier = SequenceClassifier(encoder, num_labels, dropout=cfg.model.dropout)
    method = make_method(cfg.method)
    model = method.wrap(classifier)
    names = trainable_names(model)
    device = resolve_device(cfg.model.device) if device is None else torch.device(device)
    if device.type != "cpu":
        model.to(device)
    return Workbench(
        model=model,
        method=method,
        names=names,
        pad_id=int(backbone.tokenizer.pad_token_id),
        precision=resolve_precision(cfg.model.precision, device),
        params=count_parameters(model),
        num_labels=num_labels,
        device=device,
    )


@dataclass
class UpdateResult:
    state: State
    num_examples: int
    steps: int
    loss_first: float
    loss_last: float
    loss_mean: float
    compute_s: float
    optimizer_state: State = field(default_factory=dict)
    mean_gradient: State = field(default_factory=dict)  # with `correction` (SCAFFOLD)


def local_update(
    bench: Workbench,
    state: State,
    data: EncodedSplit,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
    proximal_mu: float = 0.0,
    max_steps: int | None = None,
    optimizer: str = "adamw",
    momentum: float = 0.9,
    logit_adjustment: float = 0.0,
    optimizer_state: State | None = None,
    keep_optimizer_state: bool = False,
    correction: State | None = None,
    on_step: Callable[[], None] | None = None,
) -> UpdateResult:
    """Train `state` on `data` for `epochs` passes (or `max_steps` steps) and return it.

    The optimizer (AdamW, or SGD with `momentum`) starts fresh or from `optimizer_state`
    (returned with `keep_optimizer_state`); `correction` (SCAFFOLD's c - c_i) is added to
    every gradient (the mean gradient is returned); `proximal_mu` adds FedProx's term;
    `logit_adjustment` tau: loss on logits + tau log(client prior). Seeded by `seed`.
    """
    if len(data) == 0:
        raise ValueError("local_update got a client with no training examples")
    start = time.perf_counter()
    bench.set_state(state)
    bench.model.train()
    params = [p for n, p in bench.model.named_parameters() if p.requires_grad]
    loss_of = _objective(bench, state, data, params, proximal_mu, logit_adjustment)
    opt = make_optimizer(optimizer, params, lr=lr, weight_decay=weight_decay, momentum=momentum)
    named = list(zip(bench.names, params, strict=True))
    _load_optimizer_state(opt, named, optimizer_state or {})  # nothing to load: a fresh one
    shifts = sums = None
    if correction is not None:
        shifts = [correction[n].to(bench.device) for n in bench.names]
        sums = [torch.zeros_like(p) for p in params]
    torch.manual_seed(seed)
    losses: list[torch.Tensor] = []  # read once at the end: no device sync per step
    batches = training_batches(data, batch_size, bench.pad_id, seed, epochs, max_steps)
    with bench.matmuls():
        for batch in map(bench.batch, batches):
            loss = loss_of(batch)
            _step(opt, loss, params, max_grad_norm, shifts, sums)
            losses.append(loss.detach())
            if on_step is not None:
                on_step()
    bench.model.eval()
    result = update_result(bench.get_state(), len(data), losses, time.perf_counter() - start)
    if keep_optimizer_state:  # copied out only for a client that keeps it
        result.optimizer_state = _optimizer_state(opt, named)
    if sums is not None:
        result.mean_gradient = _mean_gradient(bench.names, sums, result.steps)
    return result


def _mean_gradient(names: list[str], sums: list[torch.Tensor], steps: int) -> State:
    """The mean gradient along the local trajectory, on the CPU (SCAFFOLD's c_i+)."""
    return {k: (g / max(steps, 1)).cpu() for k, g in zip(names, sums, strict=True)}


def _objective(
    bench: Workbench,
    state: State,
    data: EncodedSplit,
    params: list[nn.Parameter],
    proximal_mu: float,
    logit_adjustment: float,
) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The client's loss of a batch: cross-entropy (on logits + tau log prior with logit
    adjustment), plus FedProx's mu/2 ||w - w_start||^2."""
    anchors = proximal_anchors(bench, state, proximal_mu)
    shift = client_shift(bench, data, logit_adjustment)

    def loss_of(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with bench.autocast():
            out = bench.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return client_loss(out.logits.float(), batch["labels"], shift, params, anchors, proximal_mu)

    return loss_of


def client_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    shift: torch.Tensor | None,
    params: Iterable[torch.Tensor],
    anchors: list[torch.Tensor] | None,
    proximal_mu: float,
) -> torch.Tensor:
    """Cross-entropy of fp32 `logits` (+ the logit-adjustment `shift`), plus FedProx's
    mu/2 ||w - w_start||^2 when `anchors` (w_start) are given."""
    loss = nn.functional.cross_entropy(logits if shift is None else logits + shift, labels)
    if anchors is not None:
        prox = sum(((p - a) ** 2).sum() for p, a in zip(params, anchors, strict=True))
        loss = loss + 0.5 * proximal_mu * prox
    return loss


def proximal_anchors(bench: Workbench, state: State, mu: float) -> list[torch.Tensor] | None:
    """FedProx's w_start on the workbench's device, in `bench.names` order (None: mu = 0)."""
    if mu <= 0:
        return None
    return [state[n].to(bench.device, copy=True) for n in bench.names]


def update_result(
    state: State, num_examples: int, losses: list[torch.Tensor], compute_s: float
) -> UpdateResult:
    """The result of a client update from its CPU state and its per-step loss tensors."""
    values = torch.stack(losses).cpu().tolist()
    return UpdateResult(
        state=state,
        num_examples=num_examples,
        steps=len(values),
        loss_first=values[0],
        loss_last=values[-1],
        loss_mean=float(np.mean(values)),
        compute_s=compute_s,
    )


def client_shift(bench: Workbench, data: EncodedSplit, tau: float) -> torch.Tensor | None:
    """tau * log(client label prior) on the workbench's device (logit adjustment), or None."""
    if tau <= 0:
        return None
    return (tau * torch.log(label_prior(data.labels, bench.num_labels))).to(bench.device)


OPTIMIZERS = ("adamw", "sgd")


def make_optimizer(
    name: str, params: list[nn.Parameter], *, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    """AdamW, or SGD with (heavy-ball) momentum."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def label_prior(labels: list[int], num_labels: int, smoothing: float = 1.0) -> torch.Tensor:
    """Label distribution of `labels`, add-`smoothing` so that no class has probability 0."""
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=num_labels)
    counts = counts.double() + smoothing
    return (counts / counts.sum()).float()


def _step(opt, loss, params: list[nn.Parameter], max_grad_norm: float, shifts=None, sums=None):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    if shifts is not None:  # SCAFFOLD: sum the gradients as computed, then step on g - c_i + c
        for p, shift, total in zip(params, shifts, sums, strict=True):
            if p.grad is not None:
                total.add_(p.grad)
                p.grad.add_(shift.to(p.grad.dtype))
    opt.step()


def _optimizer_state(opt: torch.optim.Optimizer, named) -> State:
    """The optimizer's per-tensor state, flat: '<parameter name>::<field>' -> tensor."""
    return {
        f"{name}::{key}": value.detach().to("cpu", copy=True)
        for name, p in named
        for key, value in opt.state.get(p, {}).items()
        if torch.is_tensor(value)
    }


def _load_optimizer_state(opt: torch.optim.Optimizer, named, flat: State) -> None:
    for name, p in named:
        prefix = f"{name}::"
        fields = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
        # moments live with their parameter; Adam's step count stays a CPU scalar
        fields = {
            k: v.clone() if k == "step" else v.to(p.device, copy=True) for k, v in fields.items()
        }
        if fields:
            opt.state[p] = fields


@torch.no_grad()
def eval_logits(
    bench: Workbench, state: State | None, data: EncodedSplit, batch_size: int
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """(row indices, fp32 CPU logits, labels) per length-sorted eval batch, model in eval mode."""
    if state is not None:
        bench.set_state(state)
    model = bench.model
    model.eval()
    for batch in iterate_batches(data, batch_size=batch_size, pad_id=bench.pad_id, shuffle=False):
        inputs = bench.batch(batch)
        with bench.autocast(), bench.eval_attention():
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        yield batch["index"].numpy(), out.logits.float().cpu(), batch["labels"]


def predict(
    bench: Workbench,
    state: State | None,
    data: EncodedSplit,
    batch_size: int,
    shift: torch.Tensor | None = None,
) -> np.ndarray:
    """Predicted label index for every row of `data`, in the original row order
    (argmax of the logits, plus `shift` per class when given, e.g. a log prior)."""
    preds = np.empty(len(data), dtype=np.int64)
    for index, logits, _ in eval_logits(bench, state, data, batch_size):
        preds[index] = (logits if shift is None else logits + shift).argmax(-1).numpy()
    return preds


def training_batches(
    data: EncodedSplit, batch_size: int, pad_id: int, seed: int, epochs: int, max_steps: int | None
) -> Iterator[dict[str, torch.Tensor]]:
    """`epochs` shuffled passes, or exactly `max_steps` batches (re-shuffling as needed)."""
    epoch, steps = 0, 0
    while (max_steps is None and epoch < epochs) or (max_steps is not None and steps < max_steps):
        for batch in iterate_batches(
            data, batch_size=batch_size, pad_id=pad_id, shuffle=True, seed=seed + epoch
        ):
            if max_steps is not None and steps >= max_steps:
                return
            steps += 1
            yield batch
        epoch += 1
