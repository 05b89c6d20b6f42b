"""Descent paths: gradients from gradviz's reverse pass, optimizers equal to torch.optim, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.descent.objective import DescentError, parse_objective
from gradviz.descent.paths import run_path

QUADRATIC = "x**2 + 10*y**2"  # Hessian diag(2, 20): λ_max = 20, so GD diverges for η > 2/20 = 0.1


def test_gradient_is_the_reverse_pass_and_matches_finite_differences():
    obj = parse_objective("sin(x)*y + exp(x*y/4) + x**2")
    theta = np.array([0.7, -1.3])
    value, grad = obj.value_and_grad(theta)
    h = 1e-6
    fd = [(obj.value(theta + h * e) - obj.value(theta - h * e)) / (2 * h) for e in np.eye(2)]
    assert value == pytest.approx(np.sin(0.7) * -1.3 + np.exp(0.7 * -1.3 / 4) + 0.49)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    # The stepper's trace at θ has the same adjoints.
    trace = obj.trace_at(theta)
    np.testing.assert_allclose([float(trace.gradient("f", n)) for n in obj.names], grad)


@pytest.mark.parametrize("lr", [0.01, 0.05, 0.09])
def test_gd_on_a_quadratic_converges_below_two_over_lambda_max(lr):
    path = run_path(parse_objective(QUADRATIC).value_and_grad, np.array([2.0, 1.0]), "gd", lr, 2000)
    assert path.status == "converged"
    np.testing.assert_allclose(path.steps[-1].theta, [0.0, 0.0], atol=1e-4)
    assert path.verdict.startswith(f"converged at step {path.end_step}")


@pytest.mark.parametrize("lr", [0.105, 0.11, 0.5])
def test_gd_on_a_quadratic_diverges_above_two_over_lambda_max(lr):
    path = run_path(parse_objective(QUADRATIC).value_and_grad, np.array([2.0, 1.0]), "gd", lr, 2000)
    assert path.status == "diverged"
    assert path.verdict == f"diverged at step {path.end_step} (oscillating)"
    # Each step multiplies y by (1 − 20η), whose size exceeds 1: |y| grows every step.
    ys = np.abs(path.thetas[:, 1])
    assert np.all(ys[1:] > ys[:-1])


@pytest.mark.parametrize("lr, oscillating", [(0.01, False), (0.04, False), (0.06, True), (0.09, True), (1.1, True)])
def test_a_rate_above_one_over_lambda_oscillates(lr, oscillating):
    # y ← (1 − 20η)·y: the factor is negative, so y's update flips sign every step, once η > 1/20.
    path = run_path(parse_objective(QUADRATIC).value_and_grad, np.array([2.0, 1.0]), "gd", lr, 2000)
    assert path.oscillating is oscillating
    assert path.verdict.endswith(" (oscillating)") is oscillating


def test_a_tiny_rate_is_still_moving():
    path = run_path(parse_objective(QUADRATIC).value_and_grad, np.array([2.0, 1.0]), "gd", 1e-3, 50)
    assert path.status == "still moving" and path.verdict == "still moving after 50 steps"
    assert len(path.steps) == 51


def test_gd_updates_are_minus_lr_times_gradient():
    path = run_path(parse_objective(QUADRATIC).value_and_grad, np.array([2.0, 1.0]), "gd", 0.05, 5)
    for step in path.steps[:-1]:
        np.testing.assert_allclose(step.update, -0.05 * step.grad)
        np.testing.assert_allclose(step.grad, [2 * step.theta[0], 20 * step.theta[1]])


def torch_path(expr_torch, start, make_opt, steps):
    torch = pytest.importorskip("torch")
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = make_opt(torch, [p])
    points = [p.detach().clone().numpy()]
    for _ in range(steps):
        opt.zero_grad()
        expr_torch(torch, p).backward()
        opt.step()
        points.append(p.detach().clone().numpy())
    return np.array(points)


@pytest.mark.parametrize("expr, torch_f", [
    (QUADRATIC, lambda t, p: p[0] ** 2 + 10 * p[1] ** 2),
    ("(1 - x)**2 + 100*(y - x**2)**2", lambda t, p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2),
    ("sin(3*x)*cos(2*y) + 0.1*(x**2 + y**2)", lambda t, p: t.sin(3 * p[0]) * t.cos(2 * p[1]) + 0.1 * (p[0] ** 2 + p[1] ** 2)),
], ids=["quadratic", "rosenbrock", "bumpy"])
@pytest.mark.parametrize("name, lr, make_opt", [
    ("momentum", 0.01, lambda t, ps: t.optim.SGD(ps, lr=0.01, momentum=0.9)),
    ("adam", 0.05, lambda t, ps: t.optim.Adam(ps, lr=0.05)),
    ("gd", 0.001, lambda t, ps: t.optim.SGD(ps, lr=0.001)),
])
def test_optimizers_match_torch_optim(expr, torch_f, name, lr, make_opt):
    start = [-1.2, 1.0]
    ours = run_path(parse_objective(expr).value_and_grad, np.array(start), name, lr, 60).thetas
    theirs = torch_path(torch_f, start, make_opt, len(ours) - 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_two_starts_reach_two_minima_of_a_non_convex_function():
    obj = parse_objective("(x**2 - 1)**2 + y**2")  # minima at (±1, 0)
    left = run_path(obj.value_and_grad, np.array([-0.3, 1.0]), "gd", 0.05, 500)
    right = run_path(obj.value_and_grad, np.array([0.3, 1.0]), "gd", 0.05, 500)
    assert left.status == right.status == "converged"
    np.testing.assert_allclose(left.steps[-1].theta, [-1, 0], atol=1e-4)
    np.testing.assert_allclose(right.steps[-1].theta, [1, 0], atol=1e-4)


@pytest.mark.parametrize("expr, message", [
    ("x**2", "exactly two inputs; this one has 1 (x)"),
    ("x + y + z", "exactly two inputs; this one has 3"),
    ("a = x + y\nb = x * y", "one output; this expression has 2"),
])
def test_objectives_that_are_not_functions_of_two_inputs_are_refused(expr, message):
    with pytest.raises(DescentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_objective(expr)


def test_grid_matches_pointwise_values_with_and_without_reductions():
    for expr in ("x**2 + 10*y**2", "sum(x*[1, 2]) + y"):
        obj = parse_objective(expr)
        xs, ys = np.linspace(-1, 1, 4), np.linspace(-2, 2, 3)
        expected = [[obj.value(np.array([x, y])) for x in xs] for y in ys]
        np.testing.assert_allclose(obj.grid(xs, ys), expected)
