"""The training loop's mathematics: accumulation, the L2 term, accuracy, NaN and OOM."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gradviz.errors import SpecError, TrainingError
from gradviz.sources.spec import load_spec
from gradviz.train.loop import l2_penalty
from train_support import LINEAR_SPEC, records, run_worker, sample, status, train_here, write_spec


def final_params(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / "final.pt", weights_only=False)["model"]


# Not adam: its first step divides each gradient by its own magnitude, which turns
# rounding differences of near-zero gradients into visible ones.
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_accumulating_4_micro_batches_of_8_equals_one_batch_of_32(tmp_path: Path, optimizer: str) -> None:
    common = dict(batch_size=32, max_steps=1, dropout=0.0, optimizer=optimizer, lr=0.1, val_fraction=0.0)
    train_here(tmp_path / "big", sample("deep_mlp"), accum=1, **common)
    train_here(tmp_path / "acc", sample("deep_mlp"), accum=4, **common)
    big, acc = final_params(tmp_path / "big"), final_params(tmp_path / "acc")
    start = load_spec(sample("deep_mlp"))
    torch.manual_seed(0)
    initial = start.build_model().state_dict()
    for name in big:
        assert not torch.equal(big[name], initial[name]), "one step must change every parameter"
        torch.testing.assert_close(acc[name], big[name], rtol=1e-5, atol=1e-7)


def test_accumulated_update_is_the_lectures_formula(tmp_path: Path) -> None:
    """θ' = θ − η/k Σ ∇L_{B_P}: rebuild it by hand from four separate backward passes."""
    spec = load_spec(sample("two_layer_mlp"))
    train_here(tmp_path, sample("two_layer_mlp"), batch_size=32, accum=4, max_steps=1, optimizer="sgd", lr=0.5,
               val_fraction=0.0)
    torch.manual_seed(0)
    model = spec.build_model()
    x, y = spec.make_data(0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    batch = torch.randperm(len(x), generator=torch.Generator().manual_seed(0 * 100_003 + 1))[:32]  # seed 0, epoch 1
    grads = [torch.zeros_like(p) for p in model.parameters()]
    for part in batch.tensor_split(4):
        model.zero_grad()
        spec.loss(model(x[part]), y[part]).backward()
        grads = [g + p.grad for g, p in zip(grads, model.parameters())]
    expected = [p.detach() - 0.5 / 4 * g for p, g in zip(model.parameters(), grads)]
    got = final_params(tmp_path)
    for (name, _), want in zip(model.named_parameters(), expected):
        torch.testing.assert_close(got[name], want, rtol=1e-5, atol=1e-7)


def test_l2_penalty_value_and_gradient() -> None:
    torch.manual_seed(0)
    params = [torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    lam = 0.01
    penalty = l2_penalty(params, lam)
    expected = lam * sum((p.detach() ** 2).sum() for p in params)
    torch.testing.assert_close(penalty.detach(), expected)
    penalty.backward()
    for p in params:
        torch.testing.assert_close(p.grad, 2 * lam * p.detach())


def test_l2_is_logged_as_its_own_term_beside_the_data_loss(tmp_path: Path) -> None:
    lam = 0.05
    train_here(tmp_path, sample("two_layer_mlp"), l2=lam, max_steps=1, log_every=1)
    first = records(tmp_path)[0]
    spec = load_spec(sample("two_layer_mlp"))
    torch.manual_seed(0)
    initial = spec.build_model()
    expected = lam * sum(float((p.detach() ** 2).sum()) for p in initial.parameters())
    assert first["penalty"] == pytest.approx(expected, rel=1e-5)
    assert first["total"] == pytest.approx(first["loss"] + first["penalty"])
    assert 0.3 < first["loss"] < 1.5  # the BCE of an untrained net, without the penalty


def test_two_layer_network_reaches_95_percent_validation_accuracy(tmp_path: Path) -> None:
    result = train_here(tmp_path, sample("two_layer_mlp"))
    assert result.state == "finished"
    epoch_ends = [r for r in records(tmp_path) if r.get("epoch_end")]
    assert len(epoch_ends) == 40
    assert epoch_ends[-1]["val_acc"] > 0.95
    assert (tmp_path / "final.pt").exists() and (tmp_path / "best.pt").exists()


def test_records_carry_every_documented_field(tmp_path: Path) -> None:
    train_here(tmp_path, sample("deep_mlp"), epochs=1, log_every=5)
    rows = records(tmp_path)
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[0] == 1 and all(s % 5 == 0 for s in steps[1:-1])
    last = rows[-1]
    for key in ("step", "epoch", "loss", "penalty", "total", "lr", "samples_per_s", "grad_norm", "grad_norm_total",
                "param_norm", "keep_rate", "val_loss", "val_acc", "epoch_end", "time", "mem"):
        assert key in last, key
    assert list(last["grad_norm"]) == ["fc1", "fc2", "fc3", "out"]
    total = math.sqrt(sum(v * v for v in last["grad_norm"].values()))
    assert last["grad_norm_total"] == pytest.approx(total, rel=1e-5)
    assert set(last["keep_rate"]) == {"drop1", "drop2", "drop3"}


def test_batch_size_one_is_sgd_and_dataset_size_is_full_batch(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "sgd", spec, batch_size=1, epochs=1, val_fraction=0.0)
    train_here(tmp_path / "gd", spec, batch_size=64, epochs=3, val_fraction=0.0, log_every=1)
    assert records(tmp_path / "sgd")[-1]["step"] == 64
    assert [(r["step"], r["epoch"]) for r in records(tmp_path / "gd")] == [(1, 1), (2, 2), (3, 3)]


def test_bad_settings_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"--batch-size 1000 is larger than the training set \(410 examples"):
        train_here(tmp_path / "a", sample("two_layer_mlp"), batch_size=1000)
    with pytest.raises(TrainingError, match="--lr must be a positive number"):
        train_here(tmp_path / "b", sample("two_layer_mlp"), lr=0.0)
    with pytest.raises(SpecError, match="no such spec file"):
        train_here(tmp_path / "c", str(tmp_path / "missing.py"))
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="no CUDA GPU is available"):
            run_training_on(tmp_path / "d", "cuda")


def run_training_on(run_dir: Path, device: str) -> None:
    from gradviz.train.config import TrainConfig
    from gradviz.rundir.paths import RunPaths
    from gradviz.train.worker import DistInfo, run_training

    run_dir.mkdir()
    run_training(TrainConfig(spec=sample("two_layer_mlp"), run_dir=str(run_dir), device=device),
                 RunPaths(run_dir), DistInfo())


def test_a_failed_worker_leaves_a_readable_run_dir(tmp_path: Path) -> None:
    code = run_worker(tmp_path, sample("two_layer_mlp"), batch_size=5000)
    assert code == 2
    state = status(tmp_path)
    assert state["state"] == "failed" and state["kind"] == "TrainingError"
    assert "larger than the training set" in state["message"]
    assert "Traceback" in (tmp_path / "error.txt").read_text()


NAN_SPEC = LINEAR_SPEC.replace('"lr": 0.1', '"lr": 50.0')


def test_stop_on_nan_names_the_step_and_where_the_nan_began(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, NAN_SPEC)
    code = run_worker(tmp_path / "run", spec, stop_on_nan=True, log_every=1000, epochs=20)
    assert code == 1  # a real NaN is a finding (exit 1), not bad input (exit 2)
    state = status(tmp_path / "run")
    assert state["state"] == "failed"
    last = records(tmp_path / "run")[-1]
    assert "nonfinite" in last
    # Not the first layer in model order (every gradient is NaN by then): the traced origin.
    # An exploding lr overflows: Inf when the origin's value holds no NaN, NaN when it does.
    import json
    value = json.loads((tmp_path / "run" / "nan_trace.json").read_text())["origin"]["value"]
    kind = "NaN" if value["nan"] else "Inf"
    assert value["nan"] + value["inf"] > 0
    assert f"{kind} at step {last['step']}, born at " in state["message"]
    assert state["nan"]["step"] == last["step"]
    saved = torch.load(tmp_path / "run" / "final.pt", weights_only=False)["model"]
    assert all(torch.isfinite(v).all() for v in saved.values()), "the parameters before the bad step are kept"


def test_nan_without_stop_is_recorded_and_training_goes_on(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, NAN_SPEC)
    result = train_here(tmp_path / "run", spec, log_every=1, epochs=20)
    assert result.state == "finished"
    nan = status(tmp_path / "run")["nan"]
    first_bad = next(r for r in records(tmp_path / "run") if "nonfinite" in r)
    assert nan["step"] == first_bad["step"]


OOM_SPEC = LINEAR_SPEC.replace("def loss(output, target):", '''def loss(output, target):
    if output.shape[0] > 4:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")''')


def test_out_of_memory_names_the_batch_size(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, OOM_SPEC)
    with pytest.raises(TrainingError, match=r"out of memory on cpu at --batch-size 8 \(micro-batches of 8 examples"):
        train_here(tmp_path / "run", spec)
    train_here(tmp_path / "ok", spec, accum=2, max_steps=2)  # the advice given works


def test_max_steps_mid_epoch_still_ends_with_a_validation(tmp_path: Path) -> None:
    train_here(tmp_path, sample("two_layer_mlp"), max_steps=20, log_every=100)
    last = records(tmp_path)[-1]
    assert last["step"] == 20 and "val_loss" in last and "val_acc" in last


# One NaN feature in the first held-out example (the split's permutation, recomputed here):
# training data stay finite, the validation loss is NaN at every epoch.
VAL_NAN_SPEC = LINEAR_SPEC.replace("""    x = torch.randn(64, 3, generator=g)
    return x, x.sum(dim=1, keepdim=True)""", """    x = torch.randn(64, 3, generator=g)
    y = x.sum(dim=1, keepdim=True)
    first_val = torch.randperm(64, generator=torch.Generator().manual_seed(seed))[0]
    x[first_val, 1] = float("nan")
    return x, y""")
assert VAL_NAN_SPEC != LINEAR_SPEC


def test_a_nan_validation_loss_is_a_finding_with_its_epoch_and_exit_1(tmp_path: Path) -> None:
    from gradviz.commands.train import exit_code
    from gradviz.errors import NonFiniteError
    from gradviz.monitor.plain import summary_line
    from gradviz.monitor.state import RunView

    spec = write_spec(tmp_path, VAL_NAN_SPEC)
    assert run_worker(tmp_path / "run", spec, seed=4, epochs=3, val_fraction=0.25) == 0
    logged = records(tmp_path / "run")
    assert all(math.isfinite(r["loss"]) for r in logged)  # training itself stayed finite
    ends = [r for r in logged if r.get("epoch_end")]
    assert len(ends) == 3 and all(math.isnan(r["val_loss"]) for r in ends)
    bad = status(tmp_path / "run")["val_nonfinite"]
    assert (bad["epoch"], bad["step"]) == (1, ends[0]["step"])
    assert bad["message"] == f"validation loss NaN at epoch 1 (step {ends[0]['step']})"
    with pytest.raises(NonFiniteError) as error:
        exit_code("finished", tmp_path / "run")
    assert error.value.exit_code == 1 and bad["message"] in error.value.message
    view = RunView(tmp_path / "run")
    view.poll()
    assert bad["message"] in summary_line(view)


def test_each_logged_loss_is_the_mean_over_its_windows_examples_and_short_windows_are_marked(tmp_path: Path) -> None:
    from gradviz.monitor.state import RunView

    spec = write_spec(tmp_path, LINEAR_SPEC)
    # 60 training examples in batches of 8: seven of 8 and a last one of 4 per epoch.
    settings = dict(batch_size=8, epochs=3, val_fraction=0.0625, seed=5, optimizer="sgd")
    train_here(tmp_path / "each", spec, log_every=1, **settings)
    train_here(tmp_path / "windows", spec, log_every=5, **settings)
    per_step = {r["step"]: r["loss"] for r in records(tmp_path / "each")}
    sizes = {step: 4 if step % 8 == 0 else 8 for step in per_step}
    logged = records(tmp_path / "windows")
    previous = 0
    for r in logged:
        window = range(previous + 1, r["step"] + 1)
        expected = sum(per_step[k] * sizes[k] for k in window) / sum(sizes[k] for k in window)
        assert r["window_steps"] == len(window)
        assert r["loss"] == pytest.approx(expected, rel=1e-6), r["step"]
        previous = r["step"]
    # Steps 1, 8 (epoch end after 5), 16, 24 close windows shorter than 5: drawn apart, not in the line.
    view = RunView(tmp_path / "windows")
    view.poll()
    short_steps = [view.series.steps[i] for i in view.short_windows()]
    assert short_steps == [r["step"] for r in logged if r["window_steps"] < 5] and 8 in short_steps


def test_the_trainer_takes_a_textbook_loops_steps_bit_for_bit(tmp_path: Path) -> None:
    # Steps that are not logged take the trainer's short path, logged ones the full one (masks recorded
    # with torch's own draws), epoch ends validate: the parameters must be those of a plain loop over the
    # same batches, bit for bit. deep_mlp: dropout, so the random draws must match too; 819 training
    # examples in batches of 100: a short last batch every epoch.
    from gradviz.sources.spec import build_model, load_spec, make_data
    from gradviz.train.data import epoch_batches, split_data

    spec_path = sample("deep_mlp")
    train_here(tmp_path / "run", spec_path, epochs=3, batch_size=100, log_every=7, lr=0.01, optimizer="adam", seed=3)
    spec = load_spec(spec_path)
    x, y = make_data(spec, 3)
    data = split_data(x, y, 0.2, 3, torch.device("cpu"))
    torch.manual_seed(3)
    model = build_model(spec).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(1, 4):
        for [indices] in epoch_batches(len(data.x_train), 100, epoch, 3, 0, 1, 1, torch.device("cpu")):
            spec.loss(model(data.x_train[indices]), data.y_train[indices]).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    saved = torch.load(tmp_path / "run" / "final.pt", weights_only=False)["model"]
    assert len(data.x_train) % 100 != 0
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value), name
