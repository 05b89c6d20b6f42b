"""The NaN watch snapshots every SNAPSHOT_EVERY-th logging window only: a bad step found by
replaying from an older snapshot, through the windows in between, is the same step with the
same parameters as a run that checks every step (--stop-on-nan) finds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gradviz.errors import NonFiniteError  # noqa: E402
from gradviz.train.nan_origin import SNAPSHOT_EVERY  # noqa: E402
from test_train_nan import EXPLODING_SPEC, plain_full_batch  # noqa: E402
from train_support import train_here, write_spec  # noqa: E402


@pytest.mark.parametrize("log_every", [1, 2])
def test_a_replay_across_windows_finds_the_first_bad_step_and_its_parameters(tmp_path: Path, log_every: int) -> None:
    # lr 20 first overflows at step 11: two steps past the last snapshot at either logging interval
    spec = write_spec(tmp_path, EXPLODING_SPEC.replace('"lr": 50.0', '"lr": 20.0'))
    bad_step, _ = plain_full_batch(spec, lr=20.0, steps=200)  # an independent loop says which step
    snapshot_steps = range(1, bad_step + 1, SNAPSHOT_EVERY * log_every)  # where the windows with copies begin
    assert bad_step - max(snapshot_steps) >= log_every  # the replay runs through at least one window boundary
    train_here(tmp_path / "replayed", spec, log_every=log_every, seed=0)
    # --stop-on-nan checks every step as it trains: no snapshot, no replay
    with pytest.raises(NonFiniteError):
        train_here(tmp_path / "checked", spec, log_every=log_every, seed=0, stop_on_nan=True)
    for run in ("replayed", "checked"):
        assert json.loads((tmp_path / run / "nan_trace.json").read_text())["step"] == bad_step
    replayed = torch.load(tmp_path / "replayed" / "nan_step.pt", weights_only=False)
    checked = torch.load(tmp_path / "checked" / "nan_step.pt", weights_only=False)
    for name, value in checked["model"].items():  # the parameters before the bad update, bit for bit
        assert torch.equal(replayed["model"][name], value), name
    assert torch.equal(replayed["x"], checked["x"])


def test_each_kept_snapshot_holds_the_state_its_step_started_from_when_older_ones_are_written_over() -> None:
    # Snapshots after the first KEEP_WINDOWS are copied into the oldest one's tensors: every kept
    # one must still equal the parameters, the optimizer state and the RNG state at its own step.
    from types import SimpleNamespace

    from gradviz.train.nan_origin import KEEP_WINDOWS, NanWatch

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(2))]
    optimizer = torch.optim.Adam(params, lr=0.1)
    watch = NanWatch(SimpleNamespace(groups=SimpleNamespace(params=params), optimizer=optimizer,
                                     device=torch.device("cpu")))
    expected = {}
    for step in range(1, 6 * SNAPSHOT_EVERY * KEEP_WINDOWS):
        watch.begin_window(step)  # log_every 1: a window per step
        if (step - 1) % SNAPSHOT_EVERY == 0:
            expected[step] = ([p.detach().clone() for p in params],
                              {id(p): {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()},
                              torch.get_rng_state())
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer.step()
        torch.rand(3)  # the RNG moves on, as dropout would move it
    assert sorted(watch.snapshots) == sorted(expected)[-KEEP_WINDOWS:]
    for step, (saved, state, rng) in watch.snapshots.items():
        want_params, want_state, want_rng = expected[step]
        assert all(torch.equal(a, b) for a, b in zip(saved, want_params)), step
        assert {id(p): s for p, s in state.items()}.keys() == want_state.keys()
        for p, kept in state.items():
            assert kept.keys() == want_state[id(p)].keys()
            assert all(torch.equal(v, want_state[id(p)][k]) for k, v in kept.items()), (step, k)
        assert torch.equal(rng["cpu"], want_rng)
