"""Gradient histograms and the end-of-run check under FSDP2 (two gloo ranks on CPU): each rank counts
its local shards, one all-reduce of the counts gives the histogram of the whole gradients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import read_jsonl
from test_stats_phases_fsdp import free_port
from test_train_fsdp import fsdp_beside_one_process

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without torch.distributed")

ROOT = Path(__file__).resolve().parent.parent

# By hand, beside the trainer: a model sharded by fully_shard whose last layer has one output (dim 0 of
# its weight and bias is 1 < 2 ranks: rank 1's shards are empty), a gradient replicated on both ranks
# and one Partial (rank 0 holds it all, rank 1 zeros), each against torch.histogram of the whole tensor.
SCRIPT = """
import json, sys, torch, torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, Partial, Replicate, Shard
from gradviz.train.histograms import GradHistograms, HistogramLog, bin_edges
from gradviz.train.shard_cover import shards_cover
from gradviz.train.stats import group_parameters

dist.init_process_group("gloo")
rank = dist.get_rank()
mesh = init_device_mesh("cpu", (2,))
edges = bin_edges()

def reference(tensors):
    flat = torch.cat([t.reshape(-1) for t in tensors]).double().clamp(edges[0].item(), edges[-1].item())
    return torch.histogram(flat, bins=edges)[0].long().tolist()

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 40), nn.Tanh(), nn.Linear(40, 1))
for layer in (model[0], model[2]):
    fully_shard(layer, mesh=mesh)
fully_shard(model, mesh=mesh)
gen = torch.Generator().manual_seed(rank)
x = torch.randn(16, 3, generator=gen) * 10.0 ** torch.randint(-7, 2, (16, 1), generator=gen)  # many decades
F.mse_loss(model(x), torch.randn(16, 1, generator=gen)).backward()
groups = group_parameters(model)
log = HistogramLog(sys.argv[1] + "/histograms.jsonl" if rank == 0 else None, groups, torch.device("cpu"), 1,
                   sharded=True)
log.capture(groups.params, 1, 1)
log.close()
whole = {name: reference([p.grad.full_tensor() for p, of in zip(groups.params, groups.layer_of) if of == k])
         for k, name in enumerate(groups.names)}

g = torch.Generator().manual_seed(7)
values = torch.randn(5, 6, generator=g, dtype=torch.float64) * torch.logspace(-9, 3, 6, dtype=torch.float64)
replicated = nn.Parameter(DTensor.from_local(torch.zeros(5, 6, dtype=torch.float64), mesh, [Replicate()]))
replicated.grad = DTensor.from_local(values.clone(), mesh, [Replicate()])
partial = nn.Parameter(DTensor.from_local(torch.zeros(5, 6, dtype=torch.float64), mesh, [Replicate()]))
partial.grad = DTensor.from_local(values.clone() if rank == 0 else torch.zeros(5, 6, dtype=torch.float64),
                                  mesh, [Partial()])
placed = GradHistograms([0, 1], 2, torch.device("cpu"), sharded=True).counts([replicated, partial]).tolist()

# Shards that claim a whole of 4 rows while each rank holds 3: together they hold 6, not 4.
overlapping = nn.Parameter(DTensor.from_local(torch.zeros(3, 2), mesh, [Shard(0)], shape=torch.Size([4, 2]),
                                              stride=(2, 1)))
cover = {"model": shards_cover(groups.params, 5, torch.device("cpu")),
         "steps differ": shards_cover(groups.params, 5 + rank, torch.device("cpu")),
         "with a replica and a plain tensor": shards_cover(groups.params + [replicated, nn.Parameter(torch.zeros(3))],
                                                           5, torch.device("cpu")),
         "overlapping shards": shards_cover([overlapping], 5, torch.device("cpu"))}
local = {name: p.grad.to_local().numel() for name, p in model.named_parameters()}
out = {"whole": whole, "placed": placed, "values": reference([values]), "cover": cover, "local": local}
json.dump(out, open(f"{sys.argv[1]}/rank{rank}.json", "w"))
dist.barrier()
dist.destroy_process_group()
"""


def test_sharded_histograms_equal_torch_histogram_of_the_whole_gradients(tmp_path: Path) -> None:
    script = tmp_path / "fsdp_histograms.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-port", str(free_port()), str(script), str(tmp_path)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    lead, other = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    # Uneven shards: the one-output layer's weight (1×40) and bias (1) live on rank 0 alone.
    assert other["local"]["2.weight"] == other["local"]["2.bias"] == 0
    assert lead["local"]["2.weight"] == 40 and lead["local"]["0.weight"] + other["local"]["0.weight"] == 120
    [record] = read_jsonl(tmp_path / "histograms.jsonl")  # rank 0 alone writes
    assert (record["step"], record["epoch"]) == (1, 1)
    assert record["layers"] == lead["whole"] and set(record["layers"]) == {"0", "2"}
    assert sum(record["layers"]["0"]) == 160 and sum(record["layers"]["2"]) == 41
    assert sum(n > 0 for n in record["layers"]["0"]) >= 5  # spread over several bins, not one
    # A replicated gradient counted once (not once per rank); a Partial one reduced first.
    assert lead["placed"] == other["placed"] == [lead["values"], lead["values"]]
    assert sum(lead["values"]) == 30
    for cover in (lead["cover"], other["cover"]):
        assert cover == {"model": True, "steps differ": False, "with a replica and a plain tensor": True,
                         "overlapping shards": False}


SETTINGS = dict(device="cpu", epochs=1, batch_size=32, max_steps=6, log_every=2, hist_every=2, seed=5,
                optimizer="sgd")


def test_a_fsdp_run_writes_the_histograms_of_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    # two_layer_mlp's fc2 has one output: its weight (1×8) and bias are all on rank 0, rank 1's shards empty.
    handle = fsdp_beside_one_process(tmp_path, SETTINGS)

    sharded = read_jsonl(handle.paths.root / "histograms.jsonl")
    one = read_jsonl(tmp_path / "one" / "histograms.jsonl")
    assert [r["step"] for r in sharded] == [r["step"] for r in one] == [1, 2, 4, 6]
    for mine, theirs in zip(sharded, one):
        assert mine["layers"] == theirs["layers"], mine["step"]
        assert mine["edges"] == theirs["edges"]
        assert sum(mine["layers"]["fc1"]) == 24 and sum(mine["layers"]["fc2"]) == 9  # every value counted once

    status = read_json(handle.paths.status)
    assert status["state"] == "finished" and status["shards_cover"] is True, status
    assert "ranks_agree" not in status  # no replicas to compare under FSDP2
