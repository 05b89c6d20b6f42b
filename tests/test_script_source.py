"""Plain PyTorch scripts traced at their backward() call: the lecture's snippet gives the slide."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from gradviz.cli import main
from gradviz.sources.script import ScriptError, is_spec_file, trace_script
from train_support import sample

SNIPPET = str(Path(__file__).resolve().parent.parent / "samples" / "lecture_snippet.py")

LOOP = """
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
x, y = (torch.randn(6, 3) - 0.5) * 2, torch.randn(6, 1)  # data made with torch ops: not part of the graph
opt = torch.optim.SGD(model.parameters(), lr=0.5)
grads = []
for step in range(3):
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    opt.step(); opt.zero_grad()
    print("step", step, float(loss.detach()))
"""


def write(tmp_path: Path, body: str, name: str = "script.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_lecture_snippet_merged_is_the_slides_graph(capsys):
    trace = trace_script(SNIPPET, merge_repeats=True, run_to_end=True)
    assert capsys.readouterr().out == "tensor(3.4731)\ntensor(-3.8853)\n"  # the script's own prints, unchanged
    definitions = [n.definition for n in trace.graph.nodes if not n.is_leaf]
    assert definitions == ["v1 = x1/x2", "v2 = exp(v1)", "v3 = v2 + v1", "v4 = log(x2)", "v5 = v1 − v4", "f = v3·v5"]
    assert round(float(trace.gradient("f", "x1")), 4) == 3.4731
    assert round(float(trace.gradient("f", "x2")), 4) == -3.8853
    v1 = trace.graph.find("v1").id
    terms = [v for _, v in trace.edge_terms("f", v1)]
    assert [round(float(v), 4) for v in terms] == [0.8244, 0.5, 2.1487]  # the slide's v̄1 as a sum


def test_without_merging_each_repeat_is_its_own_node(capsys):
    trace = trace_script(SNIPPET)
    assert [n.op for n in trace.graph.nodes].count("div") == 3
    assert round(float(trace.gradient("f", "x1")), 4) == 3.4731


def test_cli_trace_table_and_json(capsys):
    assert main(["trace", SNIPPET, "--merge-repeats", "--run-to-end"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tensor(3.4731)\ntensor(-3.8853)\n")
    assert "v5 = v1 − v4" in out and "3.4731" in out and "-3.8853" in out
    assert main(["trace", SNIPPET, "--merge-repeats", "--json", "--run-to-end"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # the script's prints went to stderr
    assert "tensor(3.4731)" in captured.err
    assert data["gradients"]["f"]["x1"] == pytest.approx(3.4731, abs=5e-5)
    assert [n["label"] for n in data["nodes"]] == ["x1", "x2", "v1", "v2", "v3", "v4", "v5", "f"]


def test_cli_export_of_a_script(tmp_path, capsys):
    assert main(["export", SNIPPET, "--merge-repeats", "-o", str(tmp_path / "s.svg")]) == 0
    assert "v3 = v2 + v1" in (tmp_path / "s.svg").read_text()


def test_backward_n_traces_that_call_of_a_training_loop(tmp_path, capsys):
    path = write(tmp_path, LOOP + "\nimport builtins; builtins._gradviz_test_grads = grads\n")
    trace = trace_script(path, backward=2, run_to_end=True)
    assert "step 2" in capsys.readouterr().out  # the rest of the script ran
    import builtins

    grads = builtins._gradviz_test_grads[1]  # the script's own .grad at its second backward()
    del builtins._gradviz_test_grads
    for name, grad in grads.items():
        np.testing.assert_array_equal(trace.gradient("loss", f"model.{name}"), grad.numpy())
    assert trace.info["source"] == "model"  # tensors: the model report's statistics
    assert [n.label for n in trace.graph.nodes if n.kind == "constant"] == ["x", "y"]
    assert [n.op for n in trace.graph.nodes if n.kind == "op"] == ["linear", "tanh", "linear", "sub", "pow", "mean"]
    for node in trace.graph.nodes:  # each adjoint is the sum of its edge terms
        terms = [v for _, v in trace.edge_terms("loss", node.id) if v is not None]
        if len(terms) > 1:
            np.testing.assert_allclose(sum(terms), trace.adjoints["loss"][node.id], rtol=1e-5, atol=1e-7)


def test_script_problems_are_one_line_exit_2(tmp_path, capsys):
    none = write(tmp_path, "import torch\nx = torch.ones(2, requires_grad=True)\nprint((x * 2).sum())\n", "none.py")
    assert main(["trace", none]) == 2
    assert "never called backward()" in capsys.readouterr().err
    assert main(["trace", write(tmp_path, LOOP, "loop.py"), "--backward", "5"]) == 2
    assert "called backward() 3 times; there is no call 5" in capsys.readouterr().err
    broken = write(tmp_path, "import torch\n\nraise ValueError('bad data')\n", "broken.py")
    assert main(["trace", broken]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("broken.py: line 3: ValueError: bad data") and "Traceback" not in err
    nograd = write(tmp_path, "import torch\nx = torch.ones(2)\n(x * 2).sum().requires_grad_().backward()\n", "ng.py")
    assert main(["trace", nograd]) == 2
    assert "tensors that require grad" in capsys.readouterr().err


def test_a_file_with_the_spec_names_is_still_a_spec(tmp_path, capsys):
    assert is_spec_file(sample("two_layer_mlp"))
    assert not is_spec_file(SNIPPET)
    half = write(tmp_path, "def build_model():\n    pass\n", "half.py")
    assert is_spec_file(half)
    assert main(["trace", half]) == 2
    assert "missing required name 'loss'" in capsys.readouterr().err


TRAIN = """
import argparse
import sys
import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--save", required=True)
args = parser.parse_args()
print("epochs", args.epochs)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
torch.save({k: v.clone() for k, v in model.state_dict().items()}, args.save)  # the initial weights
x, y = torch.randn(8, 3), torch.randn(8, 1)
opt = torch.optim.{optimizer}(model.parameters(), lr=0.1)
for step in range(args.epochs):
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    with torch.no_grad():
        model[0].bias.data.mul_(0.5)  # a write through .data: another storage alias
        model[2].bias.data = model[2].bias.data + 1  # new memory behind the same parameter
    opt.zero_grad()
    print("finished step", step)
"""


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_parameters_are_shown_as_they_were_at_the_traced_backward(tmp_path, capsys, optimizer):
    saved = tmp_path / "initial.pt"
    path = write(tmp_path, TRAIN.replace("{optimizer}", optimizer))
    trace = trace_script(path, backward=1, argv=["--save", str(saved)], run_to_end=True)
    out = capsys.readouterr().out
    assert "finished step 2" in out  # the whole script ran: three optimizer steps after the traced backward
    initial = torch.load(saved)
    for name, weight in initial.items():
        shown = trace.values[trace.graph.find(f"model.{name}").id]
        np.testing.assert_array_equal(shown, weight.numpy())


def test_the_default_stops_after_the_traced_backward_and_says_so(tmp_path, capsys):
    saved = tmp_path / "initial.pt"
    path = write(tmp_path, TRAIN.replace("{optimizer}", "SGD"))
    assert main(["trace", path, "--backward", "2", "--json", "--", "--epochs", "1", "--save", str(saved)]) == 2
    err = capsys.readouterr().err
    assert "epochs 1" in err and "called backward() 1 time; there is no call 2" in err  # -- ARGS reached it
    assert main(["trace", path, "--json", "--", "--save", str(saved)]) == 0
    captured = capsys.readouterr()
    assert "epochs 3" in captured.err and "finished step" not in captured.err
    assert "stopped the script right after its backward() call 1 (--run-to-end runs the rest)" in captured.err
    data = json.loads(captured.out)
    assert data["nodes"]


def test_arguments_after_dashes_need_a_script(capsys):
    assert main(["trace", "--at", "a=1", "--", "-a * 2"]) == 0  # no .py: -- keeps its meaning
    capsys.readouterr()
    assert main(["trace", sample("two_layer_mlp"), "--", "--epochs", "1"]) == 2
    assert "arguments after -- go to a script" in capsys.readouterr().err


HELPER = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3), nn.Linear(2, 1)

    def forward(self, image):
        hidden = torch.relu(self.conv1(image))
        features = torch.relu(self.conv2(hidden))
        pooled = features.mean(dim=(2, 3))
        return self.fc(pooled)


def run(net, images):
    targets = torch.zeros(4, 1)
    scores = net(images)
    loss = ((scores - targets) ** 2).mean()
    loss.backward()
"""

USES_HELPER = """
import torch
import helper


def main():
    torch.manual_seed(0)
    helper.run(helper.Net(), torch.randn(4, 1, 7, 7))


main()
"""


def test_names_come_from_the_frames_of_any_module_and_modules_group_by_instance(tmp_path, capsys):
    write(tmp_path, HELPER, "helper.py")
    trace = trace_script(write(tmp_path, USES_HELPER, "main.py"))
    labels = {n.label for n in trace.graph.nodes}
    assert {"image", "targets", "hidden", "features", "pooled", "net.fc", "loss"} <= labels, labels
    assert "tensor" not in labels and "x" not in labels
    modules = {n.label: n.meta.get("module") for n in trace.graph.nodes}
    assert modules["net.conv1.weight"] == "net.conv1" and modules["net.conv2.weight"] == "net.conv2"
    convs = [n for n in trace.graph.nodes if n.op == "conv2d"]
    assert len({n.meta.get("module") for n in convs}) == 2  # one frame per instance, not one "Conv2d"
    assert trace.info["batch_size"] == 4
    from gradviz.views.model_report import header

    assert "batch of 4" in header(trace).plain


def test_code_the_stop_still_runs_cannot_change_the_values(tmp_path, capsys):
    path = write(tmp_path, """
        import torch
        w = torch.ones(3, requires_grad=True)
        try:
            (w * 2).sum().backward()
        finally:
            with torch.no_grad():
                w.add_(100.0)  # runs while the stop unwinds the script
    """)
    trace = trace_script(path)
    np.testing.assert_array_equal(trace.values[trace.graph.find("w").id], np.ones(3, dtype=np.float32))


def test_new_memory_put_behind_a_parameter_later_does_not_change_its_value(tmp_path, capsys):
    path = write(tmp_path, """
        import torch
        w = torch.nn.Parameter(torch.ones(3))
        (w * 2).sum().backward()
        w.data = torch.full((3,), 7.0)  # .data assignment: the parameter now holds other memory
        w.data.fill_(9.0)
    """)
    trace = trace_script(path, run_to_end=True)
    np.testing.assert_array_equal(trace.values[trace.graph.find("w").id], np.ones(3, dtype=np.float32))


SWALLOWING = """
import torch
w = torch.tensor([1.0, 2.0], requires_grad=True)
for step in range(3):
    loss = (w * w).sum()
    try:
        loss.backward()
    except{caught}:
        print("handler ran", step)
    print("ran on past the backward", step)
    with torch.no_grad():
        w -= 0.5 * w.grad
        w.grad = None
"""


@pytest.mark.parametrize("caught", ["", " BaseException"])
def test_a_handler_that_swallows_the_stop_does_not_let_the_script_run_on(tmp_path, capsys, caught):
    path = write(tmp_path, SWALLOWING.replace("{caught}", caught))
    trace = trace_script(path)
    captured = capsys.readouterr()
    assert "handler ran 0" in captured.out  # the script's own handler runs, as it would
    assert "ran on past the backward" not in captured.out  # but the next line is not reached
    lines = [line for line in captured.err.splitlines() if "stopped the script" in line]
    assert len(lines) == 1 and "caught the stop" in lines[0] and "stopped again at line 10" in lines[0]
    np.testing.assert_array_equal(trace.values[trace.graph.find("w").id], [1.0, 2.0])
    np.testing.assert_array_equal(trace.adjoints["loss"][trace.graph.find("w").id], [2.0, 4.0])


def test_a_stop_swallowed_twice_is_said_to_have_run_on(tmp_path, capsys):
    path = write(tmp_path, """
        import torch
        w = torch.tensor([1.0, 2.0], requires_grad=True)
        for step in range(2):
            try:
                try:
                    (w * w).sum().backward()
                except:
                    pass
                print("ran on", step)
            except:
                pass
        print("the end")
    """)
    trace = trace_script(path)
    captured = capsys.readouterr()
    assert "the end" in captured.out and "ran on 0" not in captured.out  # the first swallow was stopped again
    assert "caught the stop after its backward() call 1" in captured.err and "ran on to its end" in captured.err
    assert "stopped the script" not in captured.err
    (adjoints,) = trace.adjoints.values()
    np.testing.assert_array_equal(adjoints[trace.graph.find("w").id], [2.0, 4.0])


@pytest.mark.parametrize("run_to_end", [False, True])
def test_a_debuggers_trace_function_is_given_back(tmp_path, capsys, run_to_end):
    import sys

    path = write(tmp_path, SWALLOWING.replace("{caught}", ""))

    def debugger(frame, event, arg):
        return None

    before = sys.gettrace()
    sys.settrace(debugger)
    try:
        trace_script(path, run_to_end=run_to_end)
        assert sys.gettrace() is debugger
    finally:
        sys.settrace(before)
