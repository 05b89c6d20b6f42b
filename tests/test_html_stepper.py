"""The browser stepper: `export --html` read in a real Chromium, and `step --serve` driven through it.

Chromium comes from apt and Playwright from pip (launched with the system browser's
path: nothing is downloaded). The page is opened from disk with the network refused, and
every number is read off the page and compared with `trace --json`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from gradviz.cli import main
from gradviz.core.steps import state_at, stepper_steps
from gradviz.html.stepper_page import Drawings, Pieces
from gradviz.sources.expr import trace_expression
from gradviz.tui.scene import Scene
from gradviz.tui.timeline import Timeline

LECTURE = "@samples/lecture.expr"
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def lecture_json(capsys) -> dict:
    assert main(["trace", LECTURE, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def number(text: str) -> float:
    return float(text.replace("−", "-"))


def close(shown: str, exact) -> bool:
    """A number the page shows (4 decimals) against --json's full-precision one."""
    return abs(number(shown) - float(exact)) <= 0.5e-4 + 1e-12


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lecture_page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "step.html"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert main(["export", LECTURE, "--html", str(path)]) == 0
    finally:
        os.chdir(cwd)
    return path


@pytest.fixture(scope="module")
def lecture_data(lecture_page) -> dict:
    """The data the lecture's page carries, read back from the file."""
    text = lecture_page.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="gv-data">(.*?)</script>', text, re.S).group(1))


def open_offline(browser, path: Path):
    """The page from disk in a context with the network off; every request but the file is refused."""
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 800})
    requests: list[str] = []

    def refuse(route):
        requests.append(route.request.url)
        route.continue_() if route.request.url == path.as_uri() else route.abort()

    context.route("**/*", refuse)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(path.as_uri())
    return context, page, requests, errors


TAPE_COLUMNS = [("value", None), ("tangent", "x1"), ("tangent", "x2"), ("adjoint", "f")]
NODE_TIPS = """() => Array.from(document.querySelectorAll('#gv-graph g.node')).map(
    (g) => [g.id, g.getAttribute('class'), g.querySelector('title').textContent])"""


@needs_chromium
def test_arrow_keys_walk_every_step_with_the_numbers_of_json(browser, lecture_page, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    data = lecture_json(capsys)
    nodes = {n["label"]: n for n in data["nodes"]}
    trace = trace_expression("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", {"x1": 0.5, "x2": 1.0})
    steps = stepper_steps(trace)
    assert len(steps) == 30
    context, page, requests, errors = open_offline(browser, lecture_page)
    timeline = Timeline(trace, steps)
    checked = {"value": 0, "tangent": 0, "adjoint": 0, "tape": 0}
    for k in range(len(steps) + 1):
        if k:
            page.keyboard.press("ArrowRight")
        state = state_at(trace, steps, k)
        body = page.evaluate("() => ({...document.body.dataset})")
        assert body["step"] == str(k)
        current = "" if state.current is None else trace.graph.nodes[state.current].label
        assert body["node"] == current
        assert f"step {k}/30" in page.inner_text("#gv-status")
        for key, classes, tip in page.evaluate(NODE_TIPS):
            label = tip.split(" ", 1)[0]
            node_id = int(key[1:])
            node = nodes[label]
            assert ("current" in classes.split()) == (node_id == state.current)
            value = re.search(r"^value = (\S+)$", tip, re.M)
            assert (value is not None) == (node_id in state.values_known), (k, tip)
            if value:
                assert close(value.group(1), node["value"]), (k, tip)
                checked["value"] += 1
            adjoint = re.search(r"= ∂f/∂" + re.escape(label) + r" = (\S+)$", tip, re.M)
            assert (adjoint is not None) == (state.phase == "reverse" and node_id in state.adjoints_known), (k, tip)
            if adjoint:
                assert close(adjoint.group(1), node["adjoints"]["f"]), (k, tip)
                checked["adjoint"] += 1
            tangent = re.search(r"^" + re.escape(label) + r"' = ∂" + re.escape(label) + r"/∂(\w+) = (\S+)$", tip, re.M)
            if tangent:
                assert tangent.group(1) == state.pass_key and node_id in state.tangents_known
                assert close(tangent.group(2), node["tangents"][state.pass_key]), (k, tip)
                checked["tangent"] += 1
        tape = page.evaluate("""() => Array.from(document.querySelectorAll('#gv-tape tr')).slice(1).map(
            (tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent))""")
        scene = Scene(timeline, k)
        for label, _, *cells in tape:
            node = nodes[label]
            for text, (kind, key) in zip(cells, TAPE_COLUMNS):
                assert (text != "·") == (node["id"] in scene.known(kind, key)), (k, label, kind, key)
                if text != "·":
                    exact = node["value"] if kind == "value" else node[kind + "s"][key]
                    assert close(text, exact), (k, label, kind, key, text)
                    checked["tape"] += 1
        if state.current is not None:  # the inspector explains the current node with the same numbers
            inspector = page.inner_text("#gv-inspector")
            value = re.search(r"^" + re.escape(current) + r" = (\S+)$", inspector, re.M)
            assert value and close(value.group(1), nodes[current]["value"]), (k, inspector)
            if state.phase == "reverse":
                total = re.findall(r"= (\S+)$", inspector.split("(reverse mode)")[1].split("\n\n")[0], re.M)
                assert close(total[-1] if current != "f" else "1", nodes[current]["adjoints"]["f"]), (k, inspector)
    reverse = sum(1 for s in steps if s.phase == "reverse")  # step j of the pass shows j adjoints
    assert checked["tape"] > 300
    assert checked["value"] > 100 and checked["adjoint"] == sum(range(1, reverse + 1)) and checked["tangent"] > 20
    page.keyboard.press("ArrowRight")  # past the last step: stays there
    assert page.evaluate("document.body.dataset.step") == "30"
    assert requests == [lecture_page.as_uri()] and errors == []
    context.close()


@needs_chromium
def test_step_28_shows_the_three_contributions_into_v1_bar(browser, lecture_page, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    data = lecture_json(capsys)
    v1 = next(n for n in data["nodes"] if n["label"] == "v1")
    labels = {n["id"]: n["label"] for n in data["nodes"]}
    terms = {labels[t["child"]]: f"{t['value']:.4f}" for t in v1["terms"]["f"]}
    assert terms == {"v2": "0.8244", "v3": "0.5000", "v5": "2.1487"}
    context, page, _, errors = open_offline(browser, lecture_page)
    page.evaluate("() => { const s = document.getElementById('gv-scrub'); s.value = '28';"
                  " s.dispatchEvent(new Event('input')); }")
    assert page.evaluate("document.body.dataset.node") == "v1"
    # the screenshot: v1's box is seen filled with the current node's yellow, and each of its
    # three contribution edges is seen drawn in the active orange, inside the graph's pane
    shot = Image.open(io.BytesIO(page.screenshot(path=str(tmp_path / "step28.png")))).convert("RGB")
    pane = page.locator("#gv-graph").bounding_box()
    boxes = page.evaluate("""() => [document.querySelector('#gv-graph g.node.current'),
        ...document.querySelectorAll('#gv-graph g.edge.active')].map((g) => {
            const r = g.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
    assert len(boxes) == 4
    for i, (left, top, right, bottom) in enumerate(boxes):
        assert pane["x"] <= left and right <= pane["x"] + pane["width"], (i, boxes, pane)
        assert pane["y"] <= top and bottom <= pane["y"] + pane["height"], (i, boxes, pane)
        colours = shot.crop((int(left), int(top), int(right) + 1, int(bottom) + 1)).getcolors(1 << 20)
        wanted = (255, 224, 102) if i == 0 else (224, 138, 0)  # CURRENT_FILL; edge.active's colour
        seen = sum(count for count, rgb in colours if max(abs(a - b) for a, b in zip(rgb, wanted)) <= 12)
        assert seen > 30, (i, wanted, sorted(colours, reverse=True)[:5])
    # the graph: v1's three out-edges are the active ones, each labelled with its term
    active = page.evaluate("""() => Array.from(document.querySelectorAll('#gv-graph g.edge.active')).map(
        (g) => [g.querySelector('title').textContent, g.textContent])""")
    by_child = {re.search(r"n(\d+)$", title).group(1): text for title, text in active}
    assert {labels[int(child)] for child in by_child} == set(terms)
    for child, text in by_child.items():
        assert terms[labels[int(child)]] in text
    assert page.locator("#gv-graph g.node.current").count() == 1
    # the inspector: the lecture's sum, term by term
    inspector = page.inner_text("#gv-inspector")
    assert "v̄1 = v̄2·∂v2/∂v1 + v̄3·∂v3/∂v1 + v̄5·∂v5/∂v1" in inspector
    assert "= 0.8244 + 0.5000 + 2.1487 = 3.4731" in inspector
    assert "REVERSE MODE" in page.inner_text("#gv-status")
    assert errors == []
    context.close()


@needs_chromium
def test_buttons_and_mode_keys_land_where_the_terminal_stepper_does(browser, lecture_page):
    trace = trace_expression("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", {"x1": 0.5, "x2": 1.0})
    steps = stepper_steps(trace)
    tangent_start = 1 + next(i for i, s in enumerate(steps) if s.phase == "tangent")
    reverse_start = 1 + next(i for i, s in enumerate(steps) if s.phase == "reverse")
    context, page, _, errors = open_offline(browser, lecture_page)
    step = lambda: int(page.evaluate("document.body.dataset.step"))  # noqa: E731
    page.click("#gv-next")
    page.click("#gv-next")
    assert step() == 2
    page.click("#gv-prev")
    assert step() == 1
    page.keyboard.press("m")
    assert step() == tangent_start and page.evaluate("document.body.dataset.phase") == "tangent"
    page.keyboard.press("w")  # the same point of x2's pass
    assert step() == tangent_start + len([s for s in steps if s.pass_key == "x1"])
    assert "∂·/∂x2" in page.inner_text("#gv-message")
    page.keyboard.press("m")
    assert step() == reverse_start
    page.click("#gv-last")
    assert step() == 30
    page.keyboard.press("p")
    page.keyboard.press("p")
    assert page.evaluate("document.body.dataset.node") == "v1"
    page.click("#gv-graph g#n3")  # v2, as a click selects it in the terminal: its own adjoint, at this step
    inspector = page.inner_text("#gv-inspector")
    assert inspector.startswith("v2 = exp(v1)") and "selected (esc follows the current node)" in inspector
    assert "from v3: v̄3 = 0.5000 × ∂v3/∂v2 (1.0000) → 0.5000" in inspector
    assert page.locator("#gv-graph g.node.selected").get_attribute("id") == "n3"
    page.click("#gv-tape tr[data-node='6']")  # v5's row in the tape
    assert page.inner_text("#gv-inspector").startswith("v5 = v1 − v4")
    page.keyboard.press("Escape")
    assert page.inner_text("#gv-inspector").startswith("v1 = x1/x2") and step() == 28
    page.keyboard.press("Home")
    assert step() == 0
    assert "Step 0: only the inputs are known" in page.inner_text("#gv-inspector")
    assert errors == []
    context.close()


def test_the_page_is_one_small_file_that_rebuilds_each_exporters_svg(lecture_trace, lecture_page, lecture_data):
    from gradviz.draw.export import frame_sizes, make_picture, render
    from gradviz.draw.fold import plan_fold
    from gradviz.draw.look import Numbers

    text = lecture_page.read_text(encoding="utf-8")
    assert len(text.encode()) < 300_000
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)  # nothing to fetch
    data = lecture_data
    numbers, fold = Numbers(lecture_trace), plan_fold(lecture_trace.graph, budget=2000)
    widest = make_picture(lecture_trace, None, "reverse", node_limit=2000, numbers=numbers, fold=fold)
    labels, sizes = frame_sizes(lecture_trace, widest, "full", numbers, fold)
    for k in (0, 5, 28):
        svg = render(make_picture(lecture_trace, k, "reverse", None, None, "full", labels, 2000, numbers, fold),
                     "svg", sizes).decode()
        rebuilt = stored_drawing(data["steps"][k]["svg"], data["drawings"])
        assert svg.endswith(rebuilt) and rebuilt.startswith("<svg")


def test_the_page_builder_imports_neither_textual_nor_torch():
    probe = ("import sys, gradviz.html.stepper_page, gradviz.commands.step\n"
             "print(sorted(m for m in ('textual', 'torch', 'textual_serve') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("source", ["lecture", "jacobian", "nan_hunt", "two_layer_network"])
def test_the_tape_shows_at_each_step_what_the_terminal_tape_shows(source):
    from gradviz.cli import build_parser
    from gradviz.commands.common import load_trace
    from gradviz.html.stepper_page import tape_data

    args = build_parser().parse_args(["trace", str(ROOT / "samples" / f"{source}.expr")])
    args.source = "@" + args.source
    trace = load_trace(args, ("tangent", "reverse"))
    timeline = Timeline(trace, stepper_steps(trace))
    tape = tape_data(timeline)
    columns = [("value", None)] + [("tangent", k) for k in trace.tangents] + [("adjoint", k) for k in trace.adjoints]
    ids = {n.label: n.id for n in trace.graph.nodes}
    for k in range(timeline.last + 1):
        scene = Scene(timeline, k)
        for row in tape["rows"]:
            for i, (kind, key) in enumerate(columns):
                shown = row["from"][i] is not None and k >= row["from"][i]
                text = scene.text(kind, ids[row["node"]], key)
                assert shown == (text != "?"), (source, k, row["node"], kind, key)
                if shown:
                    assert row["cells"][i] == text


def test_a_clicked_node_reads_what_the_terminal_inspector_says_of_it(lecture_trace, lecture_data):
    from gradviz.html.stepper_page import TEXT_WIDTH, rich_html
    from gradviz.tui.inspector_text import inspector_report

    select = lecture_data["select"]
    timeline = Timeline(lecture_trace, stepper_steps(lecture_trace))
    assert len(select["at"]) == timeline.last + 1
    for k in range(timeline.last + 1):
        scene = Scene(timeline, k)
        for node in range(len(lecture_trace.graph.nodes)):
            shown = stored_text(select["reports"][select["at"][k][node]], select["lines"])
            assert shown == rich_html(inspector_report(scene, node, pinned=True), TEXT_WIDTH), (k, node)
    assert select["keys"]["n3"] == 3


def stored_text(runs: list[int], texts: list[str]) -> str:
    """What the page's script joins from [start, count, …] runs of stored texts."""
    return Pieces(texts=texts).text(runs)


def stored_drawing(runs: list[int], drawings: dict) -> str:
    """A step's SVG as the page's script puts it together: runs of elements, each runs of lines."""
    elements = [stored_text(element, drawings["lines"]) for element in drawings["elements"]]
    return stored_text(runs, elements)


def test_the_page_wraps_the_inspector_text_at_its_pane_not_rich_at_a_fixed_width(lecture_data):
    """At a pane narrower than rich's width, rich's breaks wrapped again left lines of a word or two."""
    intro = lecture_data["steps"][0]["inspector"]
    assert ("then one tangent pass per input (forward mode), then one adjoint pass per output (reverse mode). "
            "Hover a node for its full numbers; click a node (or a tape row) to inspect it") in intro


def test_pieces_give_each_text_back_and_store_a_line_once():
    pieces = Pieces()
    a = pieces.add('<svg>\n<g id="n0">\n</g>\n</svg>\n')
    b = pieces.add('<svg>\n<g id="n1">\n</g>\n</svg>')
    assert pieces.text(a) == '<svg>\n<g id="n0">\n</g>\n</svg>\n'
    assert pieces.text(b) == '<svg>\n<g id="n1">\n</g>\n</svg>'
    assert pieces.texts == ['<svg>\n', '<g id="n0">\n', '</g>\n', '</svg>\n', '<g id="n1">\n', '</svg>']


def test_a_step_that_changes_one_node_costs_a_few_runs_not_one_per_line():
    drawings = Drawings()

    def svg(current: int) -> str:
        nodes = "".join(f'<!-- n{i} -->\n<g id="n{i}" class="node{" current" if i == current else ""}">\n'
                        f"<text>v{i}</text>\n</g>\n" for i in range(1000))
        return '<?xml version="1.0"?>\n<!-- Generated by graphviz -->\n<svg>\n' + nodes + "</svg>\n"

    first, second = drawings.add(svg(-1)), drawings.add(svg(500))
    assert first == [0, 1001]  # <svg>, then 1000 nodes (the last one ends with </svg>)
    assert second == [0, 501, 1001, 1, 502, 499]  # n500 is the one element stored anew
    data = drawings.data()
    assert stored_drawing(first, data) == svg(-1).split("\n", 2)[2]  # all but the prolog
    assert stored_drawing(second, data) == svg(500).split("\n", 2)[2]
    # its lines are stored once: the new class line only (each node's comment, <g> and text, one </g>, <svg>, </svg>)
    assert len(data["lines"]) == 1000 * 3 + 3 + 1


def test_script_text_cannot_close_the_data_element():
    from gradviz.html.stepper_page import data_json

    assert "</script>" not in data_json({"a": "</script><!--"})
    assert json.loads(data_json({"a": "</script><!--"})) == {"a": "</script><!--"}


@pytest.mark.parametrize(("args", "message"), [
    (["--html", "step.svg"], "--html step.svg: the file name must end in .html"),
    (["--html", "/nonexistent/dir/step.html"], "cannot write /nonexistent/dir/step.html: No such file or directory"),
    (["--html", "folder.html"], "cannot write folder.html: Is a directory"),
])
def test_html_errors_are_one_line_and_exit_2_before_any_tracing(args, message, capsys, monkeypatch, tmp_path):
    import gradviz.commands.export

    def no_tracing(*_):  # a big model traces and draws for minutes before the write would fail
        raise AssertionError("traced before the destination was checked")

    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.html").mkdir()
    monkeypatch.setattr(gradviz.commands.export, "load_trace", no_tracing)
    assert main(["export", "x1*x2", "--at", "x1=1,x2=2", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_graph_with_too_many_steps_is_refused_in_one_line_that_gives_no_false_advice(capsys, monkeypatch, tmp_path):
    """A 2,100-node sum: the steps are one per node and pass, so folding (--depth) would not
    bring them under the limit, and the message must not send a person there. It is refused
    before the picture is fitted to the page (five `dot` runs on 2,100 nodes: 15 s)."""
    import gradviz.draw.export

    def no_fitting(*args, **kwargs):
        raise AssertionError("the picture was fitted before the step count was checked")

    monkeypatch.setattr(gradviz.draw.export, "fit_detail", no_fitting)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "big.expr").write_text("# at: x=0.5\n" + " + ".join(f"sin(x*{i})" for i in range(1, 701)) + "\n")
    assert main(["export", "@big.expr", "--html", "big.html", "--depth", "1"]) == 2
    err = capsys.readouterr().err
    assert "steps, too many for one page (at most 999)" in err and "trace a smaller graph" in err
    assert "--depth" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "big.html").exists()


def test_a_folded_model_exports_as_a_page(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = tmp_path / "mlp.html"
    assert main(["export", "samples/two_layer_mlp.py", "--html", str(path), "--depth", "1"]) == 0
    text = path.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="gv-data">(.*?)</script>', text, re.S).group(1))
    assert data["steps"][-1]["phase"] == "reverse" and "REVERSE MODE" in data["steps"][-1]["status"]
    assert any("▣" in line for line in data["drawings"]["lines"])  # modules drawn folded


# --- step --serve ---------------------------------------------------------------------------------


def test_the_served_command_is_this_step_without_serve():
    from gradviz.cli import build_parser
    from gradviz.html.serve import served_command

    args = build_parser().parse_args(["step", LECTURE, "--at", "x1=0.7", "--serve", "--port", "8123",
                                      "--wrt", "x2", "--detail", "ops"])
    assert served_command(args.parser, args).split()[1:] == [
        "-m", "gradviz", "step", LECTURE, "--at", "x1=0.7", "--wrt", "x2", "--detail", "ops"]


def test_the_served_page_fetches_nothing_from_the_internet():
    from gradviz.html.serve import offline_templates

    page = (offline_templates() / "app_index.html").read_text(encoding="utf-8")
    assert "googleapis" not in page and not re.search(r"""(src|href)\s*=\s*["']https?:""", page)
    assert "fonts/RobotoMono-VariableFont_wght.ttf" in page


def test_a_taken_port_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    with socket.create_server(("localhost", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["step", LECTURE, "--serve", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert f"--serve: cannot listen on localhost:{port}: Address already in use" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""


@pytest.mark.parametrize("option", [["--port", "8123"], ["--host", "0.0.0.0"]])
def test_port_or_host_without_serve_is_refused_not_ignored(option, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["step", LECTURE, *option]) == 2
    err = capsys.readouterr().err
    assert f"{option[0]} is for --serve: add --serve" in err and len(err.strip().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = tmp_path / "serve.log"  # a file, not a pipe: a pipe nobody reads could fill and stall the server
    process = subprocess.Popen([sys.executable, "-m", "gradviz", "step", LECTURE, "--serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90  # a loaded machine: it returns as soon as the port listens
    while True:
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                break
        assert process.poll() is None, log.read_text()
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"step --serve did not listen on port {port} within 90 s")
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


@needs_chromium
def test_served_stepper_steps_on_n_and_says_so_in_its_status_line(browser, served):
    import pyte

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    screen = pyte.Screen(80, 24)
    stream = pyte.ByteStream(screen)

    def sent(payload):  # the browser tells the server its terminal size before the app starts
        message = json.loads(payload) if isinstance(payload, str) else None
        if message and message[0] == "resize":
            screen.resize(message[1]["height"], message[1]["width"])

    def watch(ws):
        ws.on("framesent", sent)
        ws.on("framereceived", lambda payload: stream.feed(payload if isinstance(payload, bytes) else payload.encode()))

    page.on("websocket", watch)
    page.goto(f"http://localhost:{served}/")

    def status_line(expect: str) -> str:
        deadline = time.monotonic() + 90  # the app starts per connection; slow on a loaded machine
        while time.monotonic() < deadline:
            lines = [line for line in screen.display if expect in line]
            if lines:
                return lines[-1]
            page.wait_for_timeout(100)
        raise AssertionError(f"{expect!r} never reached the browser's screen:\n" + "\n".join(screen.display))

    assert "START" in status_line("step 0/30")
    page.click(".xterm-screen")
    for k in (1, 2, 3):
        page.keyboard.press("n")
        status_line(f"step {k}/30")
    line = status_line("step 3/30")
    assert "VALUES" in line and "node v3" in line
    assert all(url.startswith(f"http://localhost:{served}/") for url in requests), requests
    context.close()


CENTER_OFFSET = """() => {  // the current node's centre from the graph pane's centre, in pane sizes (0: centred)
    const pane = document.getElementById('gv-graph').getBoundingClientRect();
    const box = document.querySelector('#gv-graph g.node.current').getBoundingClientRect();
    return [(box.left + box.width / 2 - pane.left - pane.width / 2) / pane.width,
            (box.top + box.height / 2 - pane.top - pane.height / 2) / pane.height];
}"""


@needs_chromium
def test_the_current_node_is_brought_to_the_middle_of_the_graph_pane_with_its_edges(browser, lecture_page):
    """On a laptop screen the lecture's graph is taller than its pane: the current node is
    scrolled to the middle, so the edges carrying its contributions are seen too, not left
    at the pane's edge."""
    context, page, _, errors = open_offline(browser, lecture_page)
    page.set_viewport_size({"width": 820, "height": 600})  # the tape is wider than its pane too
    for _ in range(2):  # v1, the first value, then v2 = exp(v1), whose in-edge starts at v1
        page.keyboard.press("ArrowRight")
    assert page.evaluate("document.body.dataset.node") == "v2"
    across, down = page.evaluate(CENTER_OFFSET)
    assert abs(down) < 0.15, down  # the pane could centre it: v2 sits mid-graph
    tape = page.evaluate("[document.getElementById('gv-tape').scrollLeft, document.getElementById('gv-tape')"
                         ".scrollWidth - document.getElementById('gv-tape').clientWidth]")
    assert tape[0] == 0 < tape[1]  # the tape scrolls across, yet shows its first column: the node's name
    page.keyboard.press("End")  # x1, at the graph's top: as near the middle as the pane scrolls, and whole
    inside = page.evaluate("""() => {
        const pane = document.getElementById('gv-graph').getBoundingClientRect();
        const box = document.querySelector('#gv-graph g.node.current').getBoundingClientRect();
        return box.top >= pane.top && box.bottom <= pane.bottom && box.left >= pane.left && box.right <= pane.right;
    }""")
    assert inside and errors == []
    context.close()


@needs_chromium
def test_stepping_in_a_narrow_window_scrolls_the_panes_not_the_page(browser, lecture_page):
    """Below 800 px the panes stack and the page scrolls: a student reading the inspector
    under the graph and pressing → keeps reading it, the page does not jump back to the graph."""
    context, page, _, errors = open_offline(browser, lecture_page)
    page.set_viewport_size({"width": 700, "height": 400})
    reading = page.evaluate("document.getElementById('gv-inspector').getBoundingClientRect().top + window.scrollY")
    page.evaluate(f"window.scrollTo(0, {reading})")
    reading = page.evaluate("window.scrollY")  # whole pixels
    assert reading > 300
    for k in range(1, 12):
        page.keyboard.press("ArrowRight")
        at, end = page.evaluate("[window.scrollY, document.documentElement.scrollHeight - window.innerHeight]")
        # where it was (give or take the header's status line wrapping to one more or one less
        # line), unless the page got shorter than that
        assert abs(at - min(reading, end)) <= 20, (k, at, reading, end)
    assert page.evaluate("document.body.dataset.step") == "11" and errors == []
    context.close()


@needs_chromium
def test_space_plays_the_steps_and_space_again_pauses(browser, lecture_page):
    context, page, _, errors = open_offline(browser, lecture_page)
    step = lambda: int(page.evaluate("document.body.dataset.step"))  # noqa: E731
    page.keyboard.press(" ")
    assert page.inner_text("#gv-play") == "pause"
    page.wait_for_function("() => Number(document.body.dataset.step) >= 2", timeout=30_000)  # one step per 0.7 s
    page.keyboard.press(" ")
    assert page.inner_text("#gv-play") == "play"
    paused = step()
    page.wait_for_timeout(1_500)  # two steps' time: none is taken
    assert step() == paused >= 2 and errors == []
    context.close()


@pytest.fixture(scope="module")
def jacobian_page(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "jacobian.html"
    assert main(["export", f"@{ROOT / 'samples' / 'jacobian.expr'}", "--html", str(path)]) == 0
    return path


@needs_chromium
def test_two_outputs_each_adjoint_pass_shows_its_own_outputs_adjoints_and_o_switches(browser, jacobian_page, capsys):
    """f and g over x and y: in g's pass every adjoint the graph shows is ∂g/∂·, equal to
    --json's; `o` goes to the same point of the other output's pass, as the terminal's o."""
    from gradviz.tui import actions

    assert main(["trace", f"@{ROOT / 'samples' / 'jacobian.expr'}", "--json"]) == 0
    nodes = {n["label"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    trace = trace_expression("f = x * y + sin(x)\ng = exp(x) / y", {"x": 0.5, "y": 2.0})
    timeline = Timeline(trace, stepper_steps(trace))
    context, page, _, errors = open_offline(browser, jacobian_page)
    checked = {"f": 0, "g": 0}
    for k in range(timeline.last + 1):
        page.evaluate(f"() => {{ const s = document.getElementById('gv-scrub'); s.value = '{k}';"
                      " s.dispatchEvent(new Event('input')); }")
        status = page.inner_text("#gv-status")
        output = re.search(r"∂(\w+)/∂·  pass (\d) of 2", status)
        assert (output is not None) == (Scene(timeline, k).phase == "reverse"), (k, status)
        for _, _, tip in page.evaluate(NODE_TIPS):
            label = tip.split(" ", 1)[0]
            adjoint = r"^(?!" + re.escape(label) + r"')\S+ = ∂(\w+)/∂" + re.escape(label) + r" = (\S+)$"  # not x' = ∂x/∂x
            for key, shown in re.findall(adjoint, tip, re.M):
                assert output and key == output.group(1), (k, tip)
                assert close(shown, nodes[label]["adjoints"][key]), (k, key, label, shown)
                checked[key] += 1
    assert checked["f"] > 5 and checked["g"] > 5
    k = next(k for k in range(timeline.last + 1) if Scene(timeline, k).phase == "reverse") + 2  # f's pass
    page.evaluate(f"() => {{ const s = document.getElementById('gv-scrub'); s.value = '{k}';"
                  " s.dispatchEvent(new Event('input')); }")
    target, message = actions.switch_pass(timeline, k, "reverse")
    page.keyboard.press("o")
    assert int(page.evaluate("document.body.dataset.step")) == target != k
    assert page.inner_text("#gv-message") == message and "∂g/∂·" in message
    assert "∂g/∂·  pass 2 of 2" in page.inner_text("#gv-status") and errors == []
    context.close()
