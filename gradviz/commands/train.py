"""`gradviz train SPEC.py`: train a spec's model in its own process and watch it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gradviz.commands.common import seed_value
from gradviz.errors import NonFiniteError, SpecError, TrainingError
from gradviz.penalty import L2_FORMS
from gradviz.optimizers import accepted_names, optimizers_help
from gradviz.train.config import TrainConfig, validate
from gradviz.train.launch import default_run_dir, start_training

EXIT_INTERRUPTED = 130  # the shell's convention for a run ended by Ctrl-C


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `gradviz train` and its options."""
    p = subparsers.add_parser(
        "train", help="train a model spec for real and watch loss, gradient norms and dropout",
        description="Train a spec's model in its own process, writing a run directory, and watch it live. "
                    "Flags override the spec's TRAINING defaults.")
    p.add_argument("spec", help="model spec file (.py) defining build_model, loss and make_data")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--epochs", type=int, metavar="N", help="passes over the training set")
    p.add_argument("--batch-size", type=int, metavar="B", help="examples per update: 1 is SGD, the training-set size is full-batch GD")
    p.add_argument("--accum", type=int, metavar="K", help="split each batch into K micro-batches (gradient accumulation)")
    p.add_argument("--lr", type=float, metavar="η", help="learning rate η")
    p.add_argument("--optimizer", choices=accepted_names(), help=f"{optimizers_help()} (default sgd)")
    p.add_argument("--l2", type=float, metavar="λ", help="add the penalty λ·Σ‖θ‖² to the objective (logged on its own)")
    p.add_argument("--l2-form", choices=L2_FORMS, metavar="FORM",
                   help="squared: λ·Σ‖θ‖² (weight decay, the default); norm: the lecture's λ·Σ‖θ‖₂")
    p.add_argument("--dropout", type=float, metavar="P", help="set p of every dropout layer")
    p.add_argument("--seed", type=seed_value, metavar="S", help="seed for data, split, initial weights and shuffling")
    p.add_argument("--val-fraction", type=float, metavar="F", help="share of the data held out for validation (default 0.2)")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after this many updates")
    p.add_argument("--log-every", type=int, metavar="N", help="log statistics every N updates (default 25; epoch ends always)")
    p.add_argument("--stop-on-nan", action="store_true",
                   help="stop at the first non-finite loss or gradient (checks every step: one host sync each)")
    p.add_argument("--hist-every", type=int, metavar="N",
                   help="gradient-value histograms per layer at logged steps that are multiples of N "
                        "(default 100; 0: off)")
    p.add_argument("--snapshots", type=int, metavar="N",
                   help="keep the parameters every N steps in RUN_DIR/snapshots/ (for gradviz landscape's trajectory)")
    p.add_argument("--run-dir", type=Path, metavar="DIR", help="where to write the run (default runs/<spec>-<date-time>)")
    p.add_argument("--no-tui", action="store_true", help="print a progress bar and a table instead of the dashboard")
    dist = p.add_argument_group("distributed (torchrun)")
    dist.add_argument("--nproc-per-node", type=int, default=1, metavar="N", help="processes on this machine (one per GPU; gloo on CPU)")
    dist.add_argument("--fsdp", action="store_true",
                      help="shard the model over the processes with FSDP2's fully_shard (torchrun even for one)")
    dist.add_argument("--nnodes", type=int, default=1, metavar="N", help="number of machines")
    dist.add_argument("--node-rank", type=int, default=0, metavar="R", help="this machine's rank among them")
    dist.add_argument("--master-addr", default="127.0.0.1", metavar="HOST", help="address of the rank-0 machine")
    dist.add_argument("--master-port", type=int, default=29500, metavar="PORT", help="port of the rank-0 machine")
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A TrainConfig of what the user typed (spec defaults fill the rest in the worker)."""
    spec = Path(args.spec)
    if spec.is_dir():
        raise SpecError(f"{spec}: is a directory; a spec must be a .py file")
    if not spec.is_file():
        raise SpecError(f"{spec}: no such spec file")
    if spec.suffix != ".py":
        raise SpecError(f"{spec}: a spec must be a .py file")
    run_dir = args.run_dir if args.run_dir is not None else default_run_dir(str(spec))
    config = TrainConfig(
        spec=str(spec.resolve()), run_dir=str(Path(run_dir).resolve()), device=args.device, epochs=args.epochs,
        batch_size=args.batch_size, accum=args.accum, lr=args.lr, optimizer=args.optimizer, l2=args.l2,
        l2_form=args.l2_form,
        dropout=args.dropout, seed=args.seed, val_fraction=args.val_fraction, max_steps=args.max_steps,
        log_every=args.log_every, stop_on_nan=args.stop_on_nan, hist_every=args.hist_every, snapshots=args.snapshots,
        nproc_per_node=args.nproc_per_node, fsdp=args.fsdp,
        nnodes=args.nnodes, node_rank=args.node_rank, master_addr=args.master_addr, master_port=args.master_port,
    )
    validate(config)
    return config


def run(args: argparse.Namespace) -> int:
    """Start the trainer, follow it in the dashboard or as plain text; the exit code."""
    config = config_from_args(args)
    handle = start_training(config)
    interrupted = False
    if not args.no_tui and sys.stdout.isatty():
        from gradviz.monitor.app import run_dashboard

        state, interrupted = run_dashboard(handle.run_dir, handle)
    else:
        from gradviz.monitor.plain import follow
        from gradviz.monitor.state import RunView

        def on_interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            handle.interrupt()

        state = follow(RunView(handle.run_dir, handle), on_interrupt=on_interrupt)
    return exit_code(state, handle.run_dir, interrupted)


def exit_code(state: str, run_dir: Path, interrupted: bool = False) -> int:
    """0 when finished, stopped from the dashboard or left running; 130 after Ctrl-C.

    A failed run raises its one-line message (SpecError or TrainingError) for the CLI;
    a run whose loss or gradient went non-finite raises NonFiniteError (exit 1).
    """
    from gradviz.rundir.files import read_json
    from gradviz.rundir.paths import RunPaths
    from gradviz.rundir.status import read_failure, read_nan, read_val_nonfinite

    if state == "failed":
        kind, message = read_failure(RunPaths(run_dir))
        kinds = {"SpecError": SpecError, "NonFiniteError": NonFiniteError}
        error = kinds.get(kind or "", TrainingError)
        raise error(message or f"training failed; see {run_dir}/error.txt")
    nan = read_nan(read_json(RunPaths(run_dir).status) or {})
    if nan and state != "running":  # a run that went non-finite is a finding: exit 1, stopped or not
        raise NonFiniteError(f"{nan.get('message') or 'NaN at step ' + str(nan.get('step'))}; the run went on "
                             f"to its end ({state}); see {run_dir}/nan_trace.json")
    val = read_val_nonfinite(read_json(RunPaths(run_dir).status) or {})
    if val and state != "running":
        raise NonFiniteError(f"{val['message']}; the run went on to its end ({state}); see {run_dir}/metrics.jsonl")
    if state == "lost":
        raise TrainingError(lost_message(run_dir))
    return EXIT_INTERRUPTED if interrupted else 0


def lost_message(run_dir: Path) -> str:
    """What is known of a trainer that vanished: the step its heartbeat reached, and whether it wrote anything."""
    from gradviz.rundir.heartbeat import read_heartbeat
    from gradviz.rundir.paths import RunPaths

    paths = RunPaths(run_dir)
    beat = read_heartbeat(paths)
    at = f" at step {beat['step']}" if beat and beat["step"] else ""
    try:
        wrote = paths.worker_log.stat().st_size > 0
    except OSError:
        wrote = False
    log = f"see {paths.worker_log}" if wrote else f"{paths.worker_log} is empty"
    return f"the trainer process ended without a word{at}; {log}"
