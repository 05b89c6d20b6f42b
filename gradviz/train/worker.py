"""The trainer process: ``python -m gradviz.train.worker --config RUN_DIR/config.json``.

Run directly for one process, or by torchrun (one process per GPU, or gloo CPU
processes) for distributed data parallel training. Whatever happens, it leaves the run
directory readable: status.json says how the run ended, and on failure error.txt holds
the traceback while status.json holds the one-line message the CLI prints.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gradviz.errors import GradvizError
from gradviz.train.config import TrainConfig, read_config, resolve, write_config
from gradviz.rundir.files import DISK_FULL, describe_write_error, remove_temporaries
from gradviz.rundir.heartbeat import Heartbeat, read_heartbeat
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import write_failure, write_status


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    control_group: Any = None
    peers: tuple[Any, ...] = ()  # every rank's node, host and pid (train.peers), shared at start

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def run_training(config: TrainConfig, paths: RunPaths, dist_info: DistInfo) -> Any:
    """Load the spec, set everything up and train; returns a TrainResult."""
    trainer = build_trainer(config, paths, dist_info)
    try:
        return trainer.run()
    finally:
        trainer.recorder.close()
        if trainer.heartbeat is not None:
            trainer.heartbeat.close()


def build_trainer(config: TrainConfig, paths: RunPaths, dist_info: DistInfo) -> Any:
    """Load the spec, resolve the config, build model, data and recorder: a ready Trainer."""
    import torch

    from gradviz.sources.spec import build_model, check_spec, load_spec, make_data
    from gradviz.train.control import Controller
    from gradviz.train.data import check_batch_size, pick_device, split_data, steps_per_epoch
    from gradviz.train.dropout_probe import DROPOUT_TYPES, MaskLog, install_probes, set_dropout
    from gradviz.train.loop import Trainer
    from gradviz.train.recorder import RunRecorder, describe_host, device_name
    from gradviz.train.stats import group_parameters

    spec = load_spec(config.spec)
    config = resolve(config, spec.training)
    if dist_info.is_main:
        write_config(config, paths.config)  # now with every default filled in
    device = pick_device(config.device, dist_info.local_rank)
    check_spec(spec, config.seed)
    x, y = make_data(spec, config.seed)
    data = split_data(x, y, config.val_fraction, config.seed, device)
    n_train = len(data.x_train)
    check_batch_size(config.batch_size, n_train, dist_info.world, config.accum, config.val_fraction)

    torch.manual_seed(config.seed)  # the same initial weights on every rank and every rerun
    model = build_model(spec)
    if config.dropout is not None:
        set_dropout(model, config.dropout)
    unrecorded = [n for n, m in model.named_modules() if isinstance(m, DROPOUT_TYPES) and type(m) is not torch.nn.Dropout]
    mask_log = MaskLog()
    probed = install_probes(model, mask_log)
    model.to(device).train()
    net = model
    if config.fsdp:
        from gradviz.train.sharding import shard_model

        net = shard_model(model, device)  # sharded in place: the model's parameters become DTensors
    elif dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    groups = group_parameters(model)
    per_epoch = steps_per_epoch(n_train, config.batch_size, dist_info.world, config.accum)
    total_steps = per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    recorder = RunRecorder(paths, groups.names, {p.name: p.module.p for p in probed}, dist_info.is_main)
    recorder.meta({
        "spec": spec.name,
        "spec_path": str(spec.path),
        "layers": [{"name": name, "parameters": sum(p.numel() for p, i in zip(groups.params, groups.layer_of) if i == k)}
                   for k, name in enumerate(groups.names)],
        "dropout": [{"name": p.name, "p": p.module.p} for p in probed],
        "dropout_unrecorded": unrecorded,
        "parameters": sum(p.numel() for p in groups.params),
        "n_train": n_train,
        "n_val": len(data.x_val),
        "steps_per_epoch": per_epoch,
        "total_steps": total_steps,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "accum": config.accum,
        "optimizer": config.optimizer,
        "lr": config.lr,
        "l2": config.l2,
        "l2_form": config.l2_form,
        "device": str(device),
        "device_name": device_name(device),
        "world_size": dist_info.world,
        "sharded": config.fsdp,
        "backend": dist_info.backend,
        "torch": torch.__version__,
        **describe_host(),
    })
    controller = Controller(paths, dist_info.is_main, dist_info.control_group, distributed=dist_info.world > 1)
    controller.install_signal_handlers()
    recorder.status("running", pid=os.getpid(), device=str(device), world_size=dist_info.world)
    trainer = Trainer(config, spec, model, net, data, groups, probed, mask_log, recorder, controller, device,
                      dist_info.rank, dist_info.world, total_steps)
    if dist_info.local_rank == 0:  # each node's run directory says how far its ranks got
        trainer.heartbeat = Heartbeat(paths.heartbeat)
    return trainer


def init_distributed(config: TrainConfig) -> DistInfo:
    """Join the torchrun job when WORLD_SIZE says there is one; gloo on CPU, nccl on GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not config.fsdp:  # fully_shard needs a process group, even of one
        return DistInfo()
    import torch
    import torch.distributed as dist

    wants_cuda = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())
    backend = "nccl" if wants_cuda else "gloo"
    dist.init_process_group(backend)
    # Control decisions travel over a CPU group so they never wait on the GPU queue.
    control_group = dist.new_group(backend="gloo") if backend == "nccl" else None
    from gradviz.train.peers import gather_peers

    peers = tuple(gather_peers(config.node_rank, control_group))  # to name a lost peer later
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend,
                    control_group, peers)


def report_failure(paths: RunPaths, dist_info: DistInfo, message: str, kind: str, status: bool = True) -> None:
    """Write the traceback to error.txt (error-rank<N>.txt off rank 0) and the status.

    Each on its own: on a full disk error.txt may not fit while status.json (rewritten in
    its own blocks) still says how the run ended."""
    name = "error.txt" if dist_info.is_main else f"error-rank{dist_info.rank}.txt"
    prefix = "" if dist_info.is_main else f"rank {dist_info.rank}: "
    try:
        (paths.root / name).write_text(f"{kind}: {message}\n\n{traceback.format_exc()}")
    except OSError:
        (paths.root / name).unlink(missing_ok=True)  # no half-written traceback
    try:
        if status:
            write_failure(paths, prefix + message, kind)
    except OSError as exc:
        print(f"gradviz worker: cannot write to {paths.root}: {exc.strerror}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one training process; exit 0 on success or a clean stop, 2 on a user error."""
    parser = argparse.ArgumentParser(prog="python -m gradviz.train.worker")
    parser.add_argument("--config", required=True, type=Path, help="run_dir/config.json written by gradviz train")
    args = parser.parse_args(argv)
    paths = RunPaths(args.config.parent)
    dist_info = DistInfo()
    try:
        config = replace(read_config(args.config), run_dir=str(paths.root))
        dist_info = init_distributed(config)
        node_lead = _node_lead(config, dist_info)
        if node_lead:  # another node: its run directory says where rank 0's run is
            write_status(paths, "running", **node_lead)
        result = run_training(config, paths, dist_info)
        _leave_distributed(barrier=True)
        if node_lead:
            write_status(paths, result.state, step=result.steps, epoch=result.epoch,
                         message=f"node {config.node_rank}: ranks ended {result.state} at step {result.steps}; "
                                 f"the run directory is rank 0's on {config.master_addr}")
        return 0
    except GradvizError as exc:
        # A NaN stops every rank at the same step (the gradients are all-reduced); rank 0
        # reports it with its traced origin, and another rank's status write would race it.
        nan_elsewhere = type(exc).__name__ == "NonFiniteError" and not dist_info.is_main
        report_failure(paths, dist_info, exc.message, type(exc).__name__, status=not nan_elsewhere)
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if not _writing_the_run(exc, paths):
            return _unexpected(exc, paths, dist_info)
        # The disk is full (or the run directory unwritable): say so, leave no temporary files.
        remove_temporaries(paths.root)
        message = describe_write_error(exc)
        report_failure(paths, dist_info, message, "WriteError")
        print(f"gradviz: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: abort without the clean stop
        if dist_info.is_main:
            write_status(paths, "stopped", message="aborted by a second interrupt")
        return 130
    except Exception as exc:
        from gradviz.train.peers import is_peer_lost, lost_peer_message

        if dist_info.peers and is_peer_lost(exc):  # one line naming the lost rank, not gloo's text
            beat = read_heartbeat(paths)
            message = lost_peer_message(list(dist_info.peers), dist_info.rank, beat["step"] if beat else None)
            report_failure(paths, dist_info, message, "PeerLost")
            print(f"gradviz: error: {message}", file=sys.stderr)
            return 1
        return _unexpected(exc, paths, dist_info)
    finally:
        _leave_distributed()


def _unexpected(exc: BaseException, paths: RunPaths, dist_info: DistInfo) -> int:
    """An error gradviz did not foresee: its first line in status.json, the traceback in error.txt; exit 1."""
    first_line = (str(exc).strip().splitlines() or [""])[0]  # torch messages run to many lines
    message = f"training failed with {type(exc).__name__}: {first_line}"
    report_failure(paths, dist_info, f"{message} (traceback in {paths.error})", type(exc).__name__)
    traceback.print_exc()
    return 1


def _writing_the_run(exc: OSError, paths: RunPaths) -> bool:
    """Whether an OSError is the run directory failing to take a write (not the spec's own I/O)."""
    if exc.errno in DISK_FULL or exc.errno == errno.EROFS:
        return True
    try:
        return bool(exc.filename) and Path(exc.filename).resolve().is_relative_to(paths.root.resolve())
    except (OSError, ValueError):
        return False


def _node_lead(config: TrainConfig, dist_info: DistInfo) -> dict[str, Any] | None:
    """Status fields for the first process of a node other than node 0 (None elsewhere)."""
    if config.node_rank == 0 or dist_info.local_rank != 0 or dist_info.world <= 1:
        return None
    return {"pid": os.getpid(), "rank": dist_info.rank, "world_size": dist_info.world, "node_rank": config.node_rank,
            "message": f"node {config.node_rank} of {config.nnodes}: rank 0 writes the run on {config.master_addr}"}


def _leave_distributed(barrier: bool = False) -> None:
    """Leave the process group; after a success, together (gloo aborts a rank that leaves early).

    The trainer's objects (the DDP or FSDP module, its groups, the last graph) sit in reference
    cycles; collected here, while the groups still exist, rather than at interpreter exit, after
    them (two CI runs saw rank 1 abort at exit, 'terminate called without an active exception')."""
    if "torch.distributed" in sys.modules:
        import gc

        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            gc.collect()
            if barrier:
                dist.barrier()
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
