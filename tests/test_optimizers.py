"""The optimizer registry: every entry's numpy rule equals its torch.optim class, and
`descent` and `train` take the same names."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.optimizers import (OPTIMIZERS, accepted_names, find_optimizer, make_update, optimizers_help,
                                torch_optimizer)

torch = pytest.importorskip("torch")

# f(θ) and its gradient, in numpy and in torch: a valley, Rosenbrock, a bumpy surface.
FUNCTIONS = {
    "valley": (lambda t: np.array([2 * t[0], 20 * t[1]]), lambda t, p: p[0] ** 2 + 10 * p[1] ** 2),
    "rosenbrock": (lambda t: np.array([-2 * (1 - t[0]) - 400 * t[0] * (t[1] - t[0] ** 2), 200 * (t[1] - t[0] ** 2)]),
                   lambda t, p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2),
    "bumpy": (lambda t: np.array([3 * np.cos(3 * t[0]) * np.cos(2 * t[1]) + 0.2 * t[0],
                                  -2 * np.sin(3 * t[0]) * np.sin(2 * t[1]) + 0.2 * t[1]]),
              lambda t, p: t.sin(3 * p[0]) * t.cos(2 * p[1]) + 0.1 * (p[0] ** 2 + p[1] ** 2)),
}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("entry", OPTIMIZERS, ids=lambda o: o.name)
@pytest.mark.parametrize("momentum", [0.9, 0.5])
def test_every_entry_updates_as_its_torch_optim_class(entry, function, momentum):
    grad, torch_f = FUNCTIONS[function]
    lr, start = 0.001, np.array([-1.2, 1.0])
    ours = make_update(entry.name, lr, momentum)
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    theirs = torch_optimizer(entry.name, [p], lr, momentum)
    assert type(theirs) is getattr(torch.optim, entry.torch_class)
    theta = start.copy()
    for _ in range(40):
        theta = ours.step(theta, grad(theta))
        theirs.zero_grad()
        torch_f(torch, p).backward()
        theirs.step()
        np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert not np.allclose(theta, start)  # it moved


def test_momentum_reaches_both_sides():
    p = torch.zeros(1, requires_grad=True)
    assert torch_optimizer("momentum", [p], 0.1, 0.7).param_groups[0]["momentum"] == 0.7
    assert make_update("momentum", 0.1, 0.7).momentum == 0.7
    assert torch_optimizer("sgd", [p], 0.1, 0.7).param_groups[0]["momentum"] == 0


def test_train_and_descent_take_the_same_names():
    from gradviz.descent.runs import parse_optimizers
    from gradviz.train.config import TrainConfig, validate

    for name in accepted_names():
        assert parse_optimizers(name) == (name,)
        validate(TrainConfig(spec="s.py", run_dir="r", optimizer=name))
    assert find_optimizer("sgd") is find_optimizer("gd")
    assert find_optimizer("lbfgs") is None


def test_help_and_errors_are_written_from_the_registry(capsys):
    from gradviz.cli import main
    from gradviz.errors import TrainingError
    from gradviz.train.config import TrainConfig, validate

    assert all(o.name in optimizers_help() and o.summary in optimizers_help() for o in OPTIMIZERS)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "samples/two_layer_mlp.py", "--optimizer", "lbfgs"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "'lbfgs'" in err and all(f"'{name}'" in err for name in accepted_names())
    names = ", ".join(o.name for o in OPTIMIZERS)
    with pytest.raises(TrainingError, match=f"unknown optimizer 'lbfgs'; use {names}$"):
        validate(TrainConfig(spec="s.py", run_dir="r", optimizer="lbfgs"))


@pytest.mark.parametrize("name", ["sgd", "gd"])
def test_a_run_with_either_name_of_plain_descent_trains_with_sgd_and_the_monitor_states_its_rule(tmp_path, name):
    from gradviz.monitor.state import RunView
    from train_support import LINEAR_SPEC, train_here, write_spec

    spec = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "run", spec, batch_size=16, accum=1, lr=0.05, optimizer=name, max_steps=2, val_fraction=0.0)
    view = RunView(tmp_path / "run")
    view.poll()
    assert view.accumulation() == "B = 16, K = 1, B_P = 16 (no accumulation): θ ← θ − η·∇L_B, η = 0.05"
