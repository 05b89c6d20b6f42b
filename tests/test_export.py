"""`gradviz export`: SVG/PNG/PDF/DOT of a trace, frames, large graphs and one-line errors."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.draw.export import export_trace, make_picture
from gradviz.errors import ExportError

SVG = "{http://www.w3.org/2000/svg}"
LECTURE = ["(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1"]


def _svg_nodes(path: Path) -> dict[str, tuple[str, str]]:
    """Node group id -> (its <title>, its visible text)."""
    root = ET.parse(path).getroot()
    nodes = {}
    for group in root.iter(SVG + "g"):
        if group.get("class", "").startswith("node"):
            title = group.find(SVG + "title").text
            text = " ".join(t.text or "" for t in group.iter(SVG + "text"))
            nodes[group.get("id")] = (title, text)
    return nodes


def _edge_labels(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [" ".join(t.text or "" for t in g.iter(SVG + "text"))
            for g in root.iter(SVG + "g") if g.get("class") == "edge"]


def test_lecture_svg_has_every_node_with_value_and_v1s_contributions(lecture_trace, tmp_path):
    path = export_trace(lecture_trace, tmp_path / "f.svg", mode="reverse")
    nodes = _svg_nodes(path)
    assert len(nodes) == len(lecture_trace.graph.nodes)
    assert "2.1487" in nodes["n4"][1] and "v3 = v2 + v1" in nodes["n4"][1]
    assert nodes["n4"][0].startswith("v3 (node 4, op, scalar)") and "value = 2.1487" in nodes["n4"][0]
    labels = _edge_labels(path)
    # e^{v1} is drawn with a real superscript: 'v1' is its own raised text element
    for term in ("v̄2·e v1  = 0.8244", "v̄3 = 0.5000", "v̄5 = 2.1487"):
        assert term in labels
    assert re.search(r'baseline-shift="super"[^>]*>v1<', path.read_text())
    assert "^{" not in " ".join(labels)
    assert "http://" not in re.sub(r'xmlns(:xlink)?="[^"]*"', "", path.read_text())  # self-contained


@pytest.mark.parametrize(("name", "magic"), [("f.png", b"\x89PNG\r\n\x1a\n"), ("f.pdf", b"%PDF-")])
def test_png_and_pdf_are_files_of_their_type(lecture_trace, tmp_path, name, magic):
    data = export_trace(lecture_trace, tmp_path / name).read_bytes()
    assert data.startswith(magic) and len(data) > 1000


def test_dot_export_needs_no_dot_program(lecture_trace, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    text = export_trace(lecture_trace, tmp_path / "f.dot").read_text()
    assert text.startswith("digraph gradviz") and "n7 [label=<<B>f = v3·v5</B>" in text


def test_a_step_shows_its_current_node_and_hides_later_numbers(lecture_trace):
    picture = make_picture(lecture_trace, step=28)  # numbered as the stepper numbers it
    assert picture.title == "step 28/30, reverse mode: v1 (∂f/∂·)"
    v1 = next(b for b in picture.look.boxes if b.key == "n2")
    assert v1.style == "op.current" and v1.lines[2] == "v̄1 = 3.4731"
    assert "x̄1 = ?" in next(b for b in picture.look.boxes if b.key == "n0").lines


def test_frames_keep_every_node_in_place(tmp_path):
    assert main(["export", *LECTURE, "--mode", "tangent", "--frames", str(tmp_path / "fr")]) == 0
    frames = sorted((tmp_path / "fr").glob("step_*.svg"))
    assert len(frames) == 1 + 6 + 8  # step 0, the forward steps, the tangent pass
    # named by the stepper's numbers: x1's tangent pass is steps 7..14 there too
    assert [f.name for f in frames][-2:] == ["step_013.svg", "step_014.svg"]
    def shapes(path):
        nodes = re.findall(r'<g id="n\d+" class="node[^"]*">.*?<(?:polygon|ellipse|path)[^>]*>', path.read_text(), re.S)
        return [re.findall(r' (?:points|cx|cy|d)="([^"]*)"', node) for node in nodes]
    first = shapes(frames[0])
    assert all(shapes(frame) == first for frame in frames[1:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "f.gif"], "unknown extension"),
        (["-o", "/nonexistent/dir/f.svg"], "cannot write /nonexistent/dir/f.svg"),
        (["-o", "f.svg", "--step", "99"], "--step 99 is out of range: the stepper's steps are 0..30"),
        ([], "say where to write"),
    ],
)
def test_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", *LECTURE, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_dot_is_one_line_saying_how_to_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["export", *LECTURE, "-o", str(tmp_path / "f.svg")]) == 2
    err = capsys.readouterr().err.strip()
    assert "apt-get install graphviz" in err and len(err.splitlines()) == 1


def _balanced_sum(pairs: int) -> str:
    """An expression whose top rank holds 2·pairs inputs side by side: a wide picture."""
    terms = [f"sin(a{i}*b{i})" for i in range(pairs)]
    while len(terms) > 1:
        terms = [f"({terms[i]} + {terms[i + 1]})" for i in range(0, len(terms), 2)]
    return terms[0]


def _svg_width_px(path: Path) -> float:
    return float(re.search(r'<svg width="([\d.]+)pt"', path.read_text()).group(1)) * 96 / 72


def test_fit_detail_takes_the_most_detailed_form_no_wider_than_the_page(tmp_path):
    from gradviz.draw.export import FIT_FORMS, fit_detail, page_size
    from gradviz.sources.expr import trace_expression

    trace = trace_expression(_balanced_sum(8), at={f"{v}{i}": 0.5 for i in range(8) for v in "ab"})
    widths = {detail: page_size(make_picture(trace, detail=detail))[0] for detail in FIT_FORMS}
    for k, detail in enumerate(FIT_FORMS):
        page = widths[detail]
        expected = next(d for d in FIT_FORMS if widths[d] <= page)  # an earlier form may be as narrow
        assert fit_detail(trace, page_width=page) == (expected, widths[expected])
        assert FIT_FORMS.index(expected) <= k
    narrowest = min(widths.values())
    assert fit_detail(trace, page_width=narrowest - 1) == ("dots", widths["dots"])  # none fits: the last


def test_export_fits_a_wide_graph_to_the_page_and_says_which_form(tmp_path, capsys):
    (tmp_path / "wide.expr").write_text("# at: " + ", ".join(f"a{i}=0.5, b{i}=2" for i in range(8))
                                        + "\nf = " + _balanced_sum(8) + "\n")
    source = f"@{tmp_path / 'wide.expr'}"
    assert main(["export", source, "--detail", "full", "-o", str(tmp_path / "full.svg")]) == 0
    assert _svg_width_px(tmp_path / "full.svg") > 1920  # the full form does not fit the page
    capsys.readouterr()
    assert main(["export", source, "-o", str(tmp_path / "fit.svg")]) == 0
    out = capsys.readouterr().out
    form = re.search(r"\((\w+) form", out).group(1)
    assert form != "full" and "wider than a 1920 px page; --detail full draws them anyway" in out
    assert _svg_width_px(tmp_path / "fit.svg") <= 1920
    assert main(["export", source, "--detail", form, "-o", str(tmp_path / "same.svg")]) == 0
    assert (tmp_path / "same.svg").read_text() == (tmp_path / "fit.svg").read_text()


def test_export_draws_the_lecture_full_by_default_with_its_numbers(tmp_path, capsys):
    assert main(["export", *LECTURE, "-o", str(tmp_path / "f.svg")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'f.svg'}"  # no note: the full form fits
    nodes = _svg_nodes(tmp_path / "f.svg")
    assert "v3 = v2 + v1" in nodes["n4"][1] and "2.1487" in nodes["n4"][1]
    assert "v̄2·e v1  = 0.8244" in _edge_labels(tmp_path / "f.svg")
    assert _svg_width_px(tmp_path / "f.svg") <= 1920


@pytest.mark.parametrize("refusal", ["gif pixels", "too many frames"])
def test_a_refused_frames_export_leaves_no_folder_behind(tmp_path, capsys, monkeypatch, refusal):
    frames, gif = tmp_path / "deep" / "frames", tmp_path / "a.gif"
    if refusal == "gif pixels":
        pytest.importorskip("PIL")
        argv = ["export", *LECTURE, "--frames", str(frames), "--gif", str(gif), "--scale", "10"]
        said = "pixels a frame"
    else:
        import gradviz.draw.export as export

        monkeypatch.setattr(export, "FRAME_LIMIT", 5)  # the lecture has 30 reverse steps
        argv = ["export", *LECTURE, "--frames", str(frames)]
        said = "too many frames"
    assert main(argv) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "deep").exists() and not gif.exists()
