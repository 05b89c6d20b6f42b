"""An after-step statistic under FSDP2 (two gloo ranks): ‖Δθ‖ per layer from each rank's local
shards with one all-reduce, equal to the norms of the whole tensors' change."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, sys, torch, torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.fsdp import fully_shard
from gradviz import step_stats
from gradviz.train.dropout_probe import MaskLog
from gradviz.train.stats import StatsCollector, group_parameters, unpack

dist.init_process_group("gloo")
rank = dist.get_rank()
step_stats.STEP_STATS = step_stats.STEP_STATS + (step_stats.Stat(
    "update_norm", per_layer=True, when=step_stats.AFTER_STEP, measure=lambda m: m.layer_norms(m.update())),)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 1))
for layer in model:
    if isinstance(layer, nn.Linear):
        fully_shard(layer)
fully_shard(model)
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
gen = torch.Generator().manual_seed(rank)
loss = F.mse_loss(model(torch.randn(6, 5, generator=gen)), torch.randn(6, 1, generator=gen))
loss.backward()
groups = group_parameters(model)
collector = StatsCollector(groups, [], MaskLog(), torch.device("cpu"))
before = [p.full_tensor().clone() for p in groups.params]
collector.begin(loss.detach(), torch.tensor(0.0), with_masks=False)
optimizer.step()
collector.after_step()
vector, layout = collector.finish()
out = unpack(vector.tolist(), layout, groups.names)
after = [p.full_tensor() for p in groups.params]
expected = {name: torch.cat([(a - b).reshape(-1) for a, b, of in zip(after, before, groups.layer_of) if of == k])
            .norm().item() for k, name in enumerate(groups.names)}
if rank == 0:
    json.dump({"measured": out["update_norm"], "expected": expected}, open(sys.argv[1], "w"))
dist.barrier()
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_under_fsdp2_an_after_step_statistic_reads_the_whole_update_from_local_shards(tmp_path):
    script = tmp_path / "fsdp_update.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-port", str(free_port()), str(script), str(tmp_path / "out.json")],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads((tmp_path / "out.json").read_text())
    assert set(found["measured"]) == set(found["expected"]) == {"0", "2", "4"}
    for name, norm in found["expected"].items():
        assert norm > 1e-3
        assert found["measured"][name] == pytest.approx(norm, rel=1e-5), name
