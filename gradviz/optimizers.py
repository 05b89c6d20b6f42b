"""The optimizer registry: one entry per optimizer, shared by `train` and `descent`.

An entry names the optimizer (and any other name it answers to), says in a few words
what it does (the help texts and error messages are written from the registry), and
gives it twice: as an update rule on numpy arrays, `step(θ, g) -> θ'` with its state
kept inside, so that a `descent` path is a loop anyone can read; and as the torch.optim
class the trainer builds, with the same settings. The numpy rules follow torch.optim's
formulas, and a test runs every entry against its torch.optim class on the same
functions, so a new optimizer is its entry here (with its numpy rule).

numpy only: torch is imported inside `torch_optimizer`, for the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import numpy as np


class Update(Protocol):
    """An optimizer on numpy arrays: one update θ → θ' from the gradient g, state inside."""

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray: ...


@dataclass
class GD:
    """θ ← θ − η∇f(θ)."""

    lr: float

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One update."""
        return theta - self.lr * grad


@dataclass
class Momentum:
    """torch.optim.SGD(momentum=μ): b ← μb + g (b = g at the first step); θ ← θ − ηb."""

    lr: float
    momentum: float = 0.9
    buffer: np.ndarray | None = field(default=None, repr=False)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One update."""
        self.buffer = grad.copy() if self.buffer is None else self.momentum * self.buffer + grad
        return theta - self.lr * self.buffer


@dataclass
class Adam:
    """torch.optim.Adam: m, v running moments; θ ← θ − η·m̂/(√v̂ + ε)."""

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: np.ndarray | None = field(default=None, repr=False)
    v: np.ndarray | None = field(default=None, repr=False)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One update."""
        if self.m is None:
            self.m, self.v = np.zeros_like(grad), np.zeros_like(grad)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        # torch's order of operations: step size η/(1−β1^t), denominator √v/√(1−β2^t) + ε.
        bias1 = 1 - self.beta1 ** self.t
        bias2 = 1 - self.beta2 ** self.t
        denom = np.sqrt(self.v) / np.sqrt(bias2) + self.eps
        return theta - (self.lr / bias1) * self.m / denom


@dataclass(frozen=True)
class Optimizer:
    """One registry entry: the names, the numpy rule and the torch.optim class of an optimizer."""

    name: str
    summary: str  # a few words for the help texts: "SGD with momentum μ"
    update: Callable[..., Update]  # update(lr, **settings)
    torch_class: str  # its class in torch.optim, built as torch_class(params, lr=lr, **settings)
    settings: tuple[str, ...] = ()  # the run's settings it takes, by keyword: ("momentum",)
    aliases: tuple[str, ...] = ()  # other names it answers to


# The order of the help texts. Plain gradient descent is `sgd` as torch.optim calls it (and
# as a run's config.json records it); on a surface, `descent` calls it `gd`: one entry, both names.
OPTIMIZERS: tuple[Optimizer, ...] = (
    Optimizer("sgd", "plain gradient descent θ ← θ − η∇", GD, "SGD", aliases=("gd",)),
    Optimizer("momentum", "SGD with momentum μ", Momentum, "SGD", settings=("momentum",)),
    Optimizer("adam", "Adam", Adam, "Adam"),
)


def find_optimizer(name: str) -> Optimizer | None:
    """The entry called `name` (or answering to it); None when there is none."""
    return next((o for o in OPTIMIZERS if name == o.name or name in o.aliases), None)


def optimizer_names() -> tuple[str, ...]:
    """Every entry's own name, in registry order."""
    return tuple(o.name for o in OPTIMIZERS)


def accepted_names() -> tuple[str, ...]:
    """Every name a command takes: each entry's own and its aliases."""
    return tuple(name for o in OPTIMIZERS for name in (o.name, *o.aliases))


def optimizers_help() -> str:
    """'sgd (or gd): plain gradient descent …; momentum: SGD with momentum μ; adam: Adam' for --help."""
    return "; ".join(o.name + (f" (or {', '.join(o.aliases)})" if o.aliases else "") + f": {o.summary}"
                     for o in OPTIMIZERS)


def unknown_optimizer_message(name: str) -> str:
    """The one line for a name the registry does not know."""
    return f"unknown optimizer {name!r}; use {', '.join(optimizer_names())}"


def _entry(name: str) -> Optimizer:
    entry = find_optimizer(name)
    if entry is None:
        raise ValueError(unknown_optimizer_message(name))
    return entry


def _chosen(entry: Optimizer, settings: dict[str, Any]) -> dict[str, Any]:
    return {key: settings[key] for key in entry.settings}


def make_update(name: str, lr: float, momentum: float = 0.9) -> Update:
    """A fresh numpy optimizer by name (or alias), for `descent`."""
    entry = _entry(name)
    return entry.update(lr, **_chosen(entry, {"momentum": momentum}))


def torch_optimizer(name: str, params: Iterable[Any], lr: float, momentum: float) -> Any:
    """The torch.optim optimizer of entry `name` over `params`, for the trainer.

    L2 is never hidden in weight_decay: the trainer adds it to the loss."""
    import torch

    entry = _entry(name)
    return getattr(torch.optim, entry.torch_class)(list(params), lr=lr, **_chosen(entry, {"momentum": momentum}))
