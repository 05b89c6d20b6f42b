"""NaN to its origin: find the step whose loss or gradient first went non-finite, save
that step's batch and pre-update parameters, and trace them with gradviz's own model
tracer to the node where a value (forward) or an adjoint (backward) first went bad.

No host synchronisation per step: the loop keeps, every few logging windows, a copy of
the parameters, the optimizer state and the RNG state on the device (a few kernels),
plus the index tensors of every step's batches since. A non-finite window shows up in the
logged loss (a mean over the window, so one bad step makes it NaN/Inf) or in the
gradient norms read with it; then it is replayed step by step from the newest copy
before it (through any windows in between), with a host check each step — a one-off
cost paid only when something went wrong — and the live state is put back afterwards. Under --stop-on-nan the loop checks every step
itself, so the current step is the bad one and no replay is needed.

Files written into the run directory: ``nan_step.pt`` (step, epoch, seed, spec path,
model state before the update, the batch x and y) and ``nan_trace.json`` (where the
non-finite value was born, with its module, its inputs' values and the message).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradviz.rundir.files import read_json, write_json_atomic
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import write_status
from gradviz.train.stats import local_part

NAN_STEP = "nan_step.pt"
NAN_TRACE = "nan_trace.json"
KEEP_WINDOWS = 3  # snapshots kept: a record can land (on CUDA) a window or two after its step
# A snapshot at the start of every SNAPSHOT_EVERY-th logging window (the same windows on every
# rank): a few dozen tensor copies each, while a replay from an older snapshot only runs a few
# more steps, once, when something went wrong.
SNAPSHOT_EVERY = 4


class NanWatch:
    """Per-window snapshots and batches that let a bad step be found after the fact."""

    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.snapshots: dict[int, tuple[list[torch.Tensor], dict[str, Any], dict[str, Any]]] = {}
        self.batches: dict[int, tuple[int, list[torch.Tensor]]] = {}
        self.done = False
        self.windows = 0  # logging windows begun

    def begin_window(self, next_step: int) -> None:
        """Remember the state the update of `next_step` starts from (device copies, no sync), at
        every SNAPSHOT_EVERY-th window; a replay starts from the newest snapshot before its window."""
        if self.done:
            return
        self.windows += 1
        if (self.windows - 1) % SNAPSHOT_EVERY:
            return
        t = self.trainer
        # The oldest snapshot's tensors are copied into rather than new ones allocated: two fused
        # copies instead of a clone per parameter and per optimizer state tensor.
        reuse = self.snapshots.pop(min(self.snapshots)) if len(self.snapshots) >= KEEP_WINDOWS else None
        with torch.no_grad():
            params = _copies([p.detach() for p in t.groups.params], reuse[0] if reuse else None)
        self.snapshots[next_step] = (params, _optimizer_state(t.optimizer, reuse[1] if reuse else None),
                                     _rng_state(t.device))
        oldest = min(self.snapshots)
        for step in [s for s in self.batches if s < oldest]:
            del self.batches[step]

    def note(self, step: int, epoch: int, micro: list[torch.Tensor], global_size: int = 0) -> None:
        """Keep the index tensors of a step's micro-batches (references, no copy)."""
        if not self.done:
            self.batches[step] = (epoch, micro, global_size)

    def replay(self, upto: int) -> tuple[int, int, dict[str, torch.Tensor], list[torch.Tensor], int] | None:
        """Rerun the window ending at `upto` from its snapshot, checking each step; the first
        bad step's (step, epoch, model state before its update, this rank's micro-batches, the
        rank whose share went bad), or None.

        Under DDP every rank calls this together: the replay runs through DDP (the gradients
        all-reduced, as in training) and the ranks agree after each step on whether it went
        bad and on which rank's own loss did (the lowest such rank; rank 0 when the loss was
        finite everywhere and only the gradients were not)."""
        starts = [s for s in self.snapshots if s <= upto]
        t = self.trainer
        group = t.controller.group
        if t.world > 1:
            starts = [agree(max(starts) if starts else -1, "min", group)]  # the same window on every rank
            if starts[0] < 0:
                return None
        elif not starts:
            return None
        start = max(starts)
        params, opt_state, rng = self.snapshots[start]
        live = ([p.detach().clone() for p in t.groups.params], _optimizer_state(t.optimizer), _rng_state(t.device))
        found = None
        t.mask_log.switch(False)
        global_size = t._global_size
        try:
            _restore(t, params, opt_state, rng)
            for step in range(start, upto + 1):
                have = step in self.batches
                if t.world > 1:
                    have = bool(agree(int(have), "min", group))
                if not have:
                    break
                epoch, micro, t._global_size = self.batches[step]
                t.optimizer.zero_grad(set_to_none=True)
                distributed = t.world > 1
                loss, _ = t._backward(micro, [m.shape[0] for m in micro], net=None if distributed else t.model)
                grads = [local_part(p.grad) for p in t.groups.params if p.grad is not None]  # FSDP: own shards
                loss_bad = not bool(torch.isfinite(loss))
                bad = loss_bad or not all(bool(torch.isfinite(g).all()) for g in grads)
                rank = 0
                if distributed:  # gradients agree after DDP's all-reduce; losses are each rank's own
                    bad = bool(agree(int(bad), "max", group))
                    choice = agree(t.rank if loss_bad else t.world + t.rank, "min", group)
                    rank = choice if choice < t.world else 0
                if bad:
                    found = (step, epoch, _cpu_state(t.model), micro, rank)
                    break
                t.optimizer.step()
        finally:
            t._global_size = global_size
            t.optimizer.zero_grad(set_to_none=True)
            _restore(t, *live)
        return found


def agree(value: int, op: str, group: Any = None) -> int:
    """An integer agreed by every rank (their min or max): one small all-reduce on a CPU group
    (the controller's gloo group beside NCCL, else the default one)."""
    import torch.distributed as dist

    flag = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN if op == "min" else dist.ReduceOp.MAX, group=group)
    return int(flag.item())


def _optimizer_state_from(saved: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    with torch.no_grad():  # fresh clones: a snapshot can be restored more than once
        return {p: {k: v.clone() if torch.is_tensor(v) else copy.copy(v) for k, v in state.items()}
                for p, state in saved.items()}


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _optimizer_state(optimizer: torch.optim.Optimizer,
                     reuse: dict[Any, dict[str, Any]] | None = None) -> dict[Any, dict[str, Any]]:
    """Copies of the optimizer's per-parameter state (a tenth of deepcopy(state_dict())'s cost),
    into `reuse` (an older copy of the same layout) when given."""
    state = optimizer.state
    with torch.no_grad():
        if reuse is not None and reuse.keys() == state.keys() and all(
                reuse[p].keys() == kept.keys() for p, kept in state.items()):
            tensors = [v for kept in state.values() for v in kept.values() if torch.is_tensor(v)]
            into = [v for kept in reuse.values() for v in kept.values() if torch.is_tensor(v)]
            if len(into) == len(tensors) and _copies(tensors, into) is into:
                for p, kept in state.items():
                    for k, v in kept.items():
                        if not torch.is_tensor(v):
                            reuse[p][k] = copy.copy(v)
                return reuse
        return {p: {k: v.clone() if torch.is_tensor(v) else copy.copy(v) for k, v in kept.items()}
                for p, kept in state.items()}


def _copies(tensors: list[torch.Tensor], into: list[torch.Tensor] | None) -> list[torch.Tensor]:
    """Copies of tensors: written into `into` by one fused copy when its tensors match them (plain
    tensors of the same shapes, dtypes and devices), else new clones."""
    if (into is not None and len(into) == len(tensors) and all(
            type(a) is torch.Tensor and type(b) is torch.Tensor and a.shape == b.shape and a.dtype == b.dtype
            and a.device == b.device for a, b in zip(tensors, into))):
        if tensors:
            torch._foreach_copy_(into, tensors)
        return into
    return [t.clone() for t in tensors]


def _restore(trainer: Any, params: list[torch.Tensor], opt_state: dict[Any, dict[str, Any]], rng: dict[str, Any]) -> None:
    with torch.no_grad():
        for p, saved in zip(trainer.groups.params, params):
            p.copy_(saved)
    trainer.optimizer.state.clear()
    for p, state in _optimizer_state_from(opt_state).items():
        trainer.optimizer.state[p] = state
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], trainer.device)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from gradviz.train.sharding import full_cpu_state  # whole tensors, gathered from the shards under FSDP

    return full_cpu_state(model)


def save_step(root: Path, step: int, epoch: int, seed: int, spec_path: str, dropout: float | None,
              state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> Path:
    """Write nan_step.pt: what `gradviz step RUN_DIR` needs to trace the bad step again."""
    path = Path(root) / NAN_STEP
    torch.save({"step": step, "epoch": epoch, "seed": seed, "spec": spec_path, "dropout": dropout,
                "model": state, "x": x.detach().cpu(), "y": y.detach().cpu()}, path)
    return path


def trace_saved(root: Path):
    """The Trace of the saved bad step: the spec's model with the saved parameters, on the saved batch.

    nan_step.pt is loaded as tensors and plain data only (never code); the spec it names
    is then run, as any spec is, under the spec time bound."""
    from gradviz.errors import TrainingError
    from gradviz.files.read import check_regular, load_tensors
    from gradviz.sources.model import trace_model
    from gradviz.sources.spec import build_model, load_spec
    from gradviz.sources.spec_run import running_spec
    from gradviz.train.dropout_probe import set_dropout

    path = Path(root) / NAN_STEP
    if not path.exists() and not path.is_symlink():
        raise TrainingError(f"{root}: no {NAN_STEP} (the run never went non-finite, or predates this feature)")
    check_regular(path, "saved step")
    saved = _checked_step(path, load_tensors(path, "saved step"))
    spec = load_spec(saved["spec"])
    torch.manual_seed(saved["seed"])
    model = build_model(spec)
    if saved.get("dropout") is not None:
        set_dropout(model, saved["dropout"])
    try:
        model.load_state_dict(saved["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"{path}: its parameters do not fit the model {saved['spec']} builds ({first[:160]})") from None
    model.train()
    info = {"spec": saved["spec"], "name": spec.name, "batch_size": int(saved["x"].shape[0]), "seed": saved["seed"],
            "training": True, "examples": int(saved["x"].shape[0]), "train_step": saved["step"]}
    with running_spec(spec.path, "the replayed step"):
        return trace_model(model, spec.loss, saved["x"], saved["y"], seed=saved["seed"], info=info)


_SAVED_FIELDS = {"step": int, "seed": int, "spec": str, "model": dict, "x": torch.Tensor, "y": torch.Tensor}


def _checked_step(path: Path, saved: Any) -> dict[str, Any]:
    """nan_step.pt's contents, once each field has the type save_step wrote; else one line."""
    from gradviz.errors import TrainingError

    if not isinstance(saved, dict):
        raise TrainingError(f"{path}: holds a {type(saved).__name__}, not the saved step gradviz train writes")
    for name, kind in _SAVED_FIELDS.items():
        if not isinstance(saved.get(name), kind) or isinstance(saved.get(name), bool):
            found = "nothing" if name not in saved else f"a {type(saved[name]).__name__}"
            raise TrainingError(f"{path}: its '{name}' is {found}, not a {kind.__name__}; not a saved step gradviz train wrote")
    if not all(isinstance(v, torch.Tensor) for v in saved["model"].values()):
        raise TrainingError(f"{path}: its 'model' holds values that are not tensors")
    x, y = saved["x"], saved["y"]
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise TrainingError(f"{path}: its batch x {tuple(saved['x'].shape)} and targets y {tuple(saved['y'].shape)} do not match")
    dropout = saved.get("dropout")
    if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1):
        raise TrainingError(f"{path}: its 'dropout' {dropout!r} is not a probability in [0, 1)")
    if not 0 <= saved["seed"] < 2**63:
        raise TrainingError(f"{path}: its seed {saved['seed']} is out of range")
    return saved


def origin_of(trace: Any) -> dict[str, Any] | None:
    """Where the step first went non-finite: phase, node, module, its inputs' values.

    A non-finite loss was born in the forward pass, at the node on its path whose value
    went bad while its inputs were finite. A finite loss with non-finite gradients was
    born in the backward pass, even when some value went bad on the way and was masked
    out (torch.where(z > 0, sqrt(z), 0): finite forward, NaN adjoint from sqrt).
    """
    found = _birth(trace)
    if found is None:
        return None
    phase, node_id = found
    graph = trace.graph
    node = graph.nodes[node_id]
    inputs = [{"label": graph.nodes[i].label, "module": graph.nodes[i].meta.get("module"),
               **_summary(trace.values[i])} for i in node.inputs]
    entry: dict[str, Any] = {"phase": phase, "node": node_id, "label": node.label, "op": node.op,
                             "module": node.meta.get("module"), "definition": node.definition,
                             "value": _summary(trace.values[node_id]), "inputs": inputs}
    if phase == "forward":
        # The value came from its inputs: name the op input it was computed from.
        sources = [graph.nodes[i] for i in node.inputs if graph.nodes[i].kind in ("op", "input")]
        entry["from"] = sources[0].label if sources else None
        entry["kind"] = _kind(entry["value"])
    else:
        output = next(iter(trace.adjoints))
        entry["adjoint"] = _summary(trace.adjoints[output][node_id])
        entry["kind"] = _kind(entry["adjoint"])
        # The adjoint came from a child's edge term: name the first non-finite one.
        bad = [graph.nodes[child].label for (child, _), term in trace.edge_terms(output, node_id)
               if term is not None and not np.all(np.isfinite(term))]
        entry["from"] = bad[0] if bad else None
    return entry


def _birth(trace: Any) -> tuple[str, int] | None:
    """('forward', id) of the node a non-finite loss comes from, or ('backward', id) of the
    first non-finite adjoint behind a finite loss; None when the step is finite."""
    graph = trace.graph
    finite = (lambda v: v is None or bool(np.all(np.isfinite(np.asarray(v, dtype=np.float64)))))  # noqa: E731
    node_id = graph.outputs[next(iter(graph.outputs))]
    if not finite(trace.values[node_id]):
        while True:  # walk back along non-finite inputs to where finite inputs made a bad value
            bad = [i for i in graph.nodes[node_id].inputs if not finite(trace.values[i])]
            if not bad:
                return "forward", node_id
            node_id = min(bad)  # the earliest (nodes are in topological order)
    for adjoints in trace.adjoints.values():
        for node in reversed(graph.nodes):  # the order the backward pass computes them
            if not finite(adjoints[node.id]):
                return "backward", node.id
    return None


def _kind(summary: dict[str, Any]) -> str:
    """'NaN' when any element is NaN, else 'Inf' (an overflow is not a NaN)."""
    return "NaN" if summary["nan"] else "Inf"


def message(step: int, origin: dict[str, Any] | None, loss: float = math.nan, rank: int | None = None) -> str:
    """'NaN at step 412, born at fc2 → log (forward)' ('… step 5 on rank 1, …' under DDP),
    or what is known without an origin."""
    on = f" on rank {rank}" if rank is not None else ""
    if origin is None:
        kind = "Inf" if math.isinf(loss) else "NaN"
        return f"{kind} at step {step}{on} (the traced replay of that step stayed finite)"
    where = f"{origin['from']} → {origin['label']}" if origin.get("from") else origin["label"]
    return f"{origin.get('kind', 'NaN')} at step {step}{on}, born at {where} ({origin['phase']})"


def record_origin(root: Path, step: int, epoch: int, seed: int, spec_path: str, dropout: float | None,
                  state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                  bad_examples: list[int] | None = None, rank: int | None = None) -> dict[str, Any]:
    """Save the bad step, trace it, write nan_trace.json and the status; the status entry.

    bad_examples: dataset indices of the batch's examples with non-finite data (named in the message).
    """
    save_step(root, step, epoch, seed, spec_path, dropout, state, x, y)
    try:
        trace = trace_saved(root)
        origin = origin_of(trace)
        loss = trace.values[trace.graph.outputs[next(iter(trace.graph.outputs))]]
        loss_value = float(np.asarray(loss).reshape(-1)[0])
    except Exception as exc:  # the trace is a diagnosis: it must never take the run down
        origin, loss_value = None, math.nan
        note = f"tracing the step failed: {type(exc).__name__}: {exc}"
    else:
        note = None
    text = message(step, origin, loss_value, rank)
    if bad_examples:
        shown = ", ".join(map(str, bad_examples[:8])) + (f" and {len(bad_examples) - 8} more" if len(bad_examples) > 8 else "")
        text += f"; non-finite data in dataset example{'s' if len(bad_examples) > 1 else ''} {shown}"
    entry = {"step": step, "epoch": epoch, "rank": rank, "origin": origin, "loss": loss_value,
             "message": text, "trace_note": note, "bad_examples": list(bad_examples or []),
             "layer": _layer(origin)}
    write_json_atomic(Path(root) / NAN_TRACE, entry)
    status = read_json(Path(root) / "status.json") or {}
    write_status(RunPaths(Path(root)), status.get("state", "running"),
                 nan={"step": step, "layer": entry["layer"], "message": entry["message"], "rank": rank})
    return entry


def _layer(origin: dict[str, Any] | None) -> str | None:
    """The module the origin belongs to, or the one its first input came from (log(fc2) → fc2)."""
    if origin is None:
        return None
    return origin.get("module") or next((i["module"] for i in origin["inputs"] if i.get("module")), None)


def _summary(value: Any) -> dict[str, Any]:
    """Small statistics of a tensor value, NaN/Inf counted (JSON-safe)."""
    a = np.asarray(value, dtype=np.float64) if value is not None else np.zeros(0)
    finite = a[np.isfinite(a)]
    num = (lambda v: float(v) if finite.size else None)  # noqa: E731 - local
    return {"shape": list(a.shape), "nan": int(np.isnan(a).sum()), "inf": int(np.isinf(a).sum()),
            "min": num(finite.min()) if finite.size else None, "max": num(finite.max()) if finite.size else None,
            "mean": num(finite.mean()) if finite.size else None,
            "sample": [None if not math.isfinite(v) else v for v in a.reshape(-1)[:8].tolist()]}
