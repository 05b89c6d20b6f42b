"""Charts as files: gradviz's own SVGs rasterised to PNG and GIF (descent, batches, methods, run
charts), themes, and one-line refusals. Pixels are read back and compared with what was drawn."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from gradviz.cli import main  # noqa: E402
from gradviz.draw.chart_file import growth_steps, svg_to_png, themed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DESCENT = ["descent", "x**2 + 10*y**2", "--from", "x=-4,y=1.5", "--lr", "0.02,0.09", "--steps", "40", "--no-tui"]
SMALL = ('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="60" viewBox="0 0 100 60" font-size="12">\n'
         '<rect width="100" height="60" fill="white"/>\n'
         '<clipPath id="p"><rect x="0" y="0" width="50" height="60"/></clipPath>\n'
         '<rect x="10" y="10" width="20" height="20" fill="#ff0000"/>\n'
         '<g clip-path="url(#p)">\n<polyline points="40,50 90,50" fill="none" stroke="#0000ff" stroke-width="3"/>\n</g>\n'
         '<g transform="translate(60,0)">\n<circle cx="20" cy="20" r="5" fill="#00ff00"/>\n</g>\n'
         '<text x="5" y="55">ab</text>\n</svg>\n')


def _image(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_svg_subset_rasterises_where_it_was_drawn() -> None:
    pixels = _image(svg_to_png(SMALL))
    assert pixels.shape == (60, 100, 3)
    assert tuple(pixels[20, 20]) == (255, 0, 0)  # the rect
    assert tuple(pixels[2, 2]) == (255, 255, 255)  # the paper
    assert tuple(pixels[50, 45]) == (0, 0, 255) and tuple(pixels[50, 70]) == (255, 255, 255)  # clipped at x = 50
    assert tuple(pixels[20, 80]) == (0, 255, 0)  # the circle, moved by its group's translate
    assert pixels[45:58, 4:20].min() < 100  # the text's ink
    assert _image(svg_to_png(SMALL, scale=2)).shape == (120, 200, 3)


def test_dark_theme_swaps_paper_and_ink_but_not_the_data() -> None:
    pixels = _image(svg_to_png(themed(SMALL, "dark")))
    assert tuple(pixels[2, 2]) == (0x1E, 0x1E, 0x1E)
    assert tuple(pixels[20, 20]) == (255, 0, 0)
    assert pixels[45:58, 4:20].max() > 180  # light ink on the dark paper
    assert themed(SMALL, "light") == SMALL


def test_dark_theme_keeps_a_heat_maps_brightest_colours() -> None:
    """Viridis' top yellows are data (the highest f on a descent map): dark paper leaves them
    as drawn; only the pale region tints (#fde2e2, #e2ecfd) turn deep."""
    svg = SMALL.replace('fill="#ff0000"', 'fill="#fde725"')
    assert tuple(_image(svg_to_png(themed(svg, "dark")))[20, 20]) == (0xFD, 0xE7, 0x25)
    assert 'fill="#fde725"' in themed(svg, "dark")
    for tint in ("#fde2e2", "#e2ecfd"):
        assert f'fill="{tint}"' not in themed(SMALL.replace('fill="#ff0000"', f'fill="{tint}"'), "dark")


def test_dark_descent_map_keeps_its_colour_bar(tmp_path: Path, capsys) -> None:
    """The colour bar is the same scale on either paper (its top yellows were darkened to olive)."""
    bars = {}
    for theme in ("light", "dark"):
        out = tmp_path / f"{theme}.svg"
        assert main(["descent", "(1-x)**2 + 100*(y-x**2)**2", "--from", "x=-1.5,y=2", "--steps", "20", "--no-tui",
                     "-o", str(out), "--theme", theme]) == 0
        bars[theme] = re.findall(r'<rect x="575" y="[0-9.]+" width="18" height="8.00" fill="(#[0-9a-f]{6})"/>',
                                 out.read_text())
    capsys.readouterr()
    assert len(bars["light"]) > 10 and bars["dark"] == bars["light"]


def test_dark_descent_legend_swatches_are_their_paths_colours(tmp_path: Path, capsys) -> None:
    """The second path is white: its legend swatch and end marker were darkened to grey while
    its line stayed white, so the legend named a colour no path had."""
    out = tmp_path / "d.svg"
    assert main(["descent", "x**2 + 10*y**2", "--from", "x=-4,y=1.5", "--lr", "0.02,0.05,0.09", "--steps", "20",
                 "--no-tui", "-o", str(out), "--theme", "dark"]) == 0
    capsys.readouterr()
    svg = out.read_text()
    lines = re.findall(r'<polyline points="[^"]*" fill="none" stroke="(#[0-9a-f]{6})" stroke-width="1.5"/>', svg)
    swatches = re.findall(r'<rect x="\d+" y="[0-9.]+" width="18" height="10" fill="(#[0-9a-f]{6})"', svg)
    assert len(lines) == 3 and swatches == lines


def test_growth_steps_end_before_the_whole_path() -> None:
    assert growth_steps(5) == [0, 1, 2, 3, 4]
    steps = growth_steps(199)
    assert steps[0] == 0 and steps[-1] == 198 and len(steps) == 60 and steps == sorted(set(steps))


def test_descent_png_and_gif(tmp_path: Path, capsys) -> None:
    from gradviz.commands.descent import add_parser  # noqa: F401  (the command under test)
    from gradviz.descent.draw import run_svg

    png, gif, svg = tmp_path / "d.png", tmp_path / "d.gif", tmp_path / "d.svg"
    for path in (png, gif, svg):
        assert main([*DESCENT, "-o", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"wrote {gif} (the paths growing over 40 steps" in err
    last = _image(png.read_bytes())
    assert last.shape[:2] == _image(svg_to_png(svg.read_text())).shape[:2]
    animation = Image.open(gif)
    assert animation.n_frames > 30
    frames = []
    for i in range(animation.n_frames):
        animation.seek(i)
        frames.append(np.asarray(animation.convert("RGB")).astype(int))
    # the paths grow: each frame differs from the whole picture less than the one before
    distance = [np.abs(f - frames[-1]).sum() for f in frames]
    assert distance[0] > distance[len(distance) // 2] > distance[-2] > 0 == distance[-1]
    # the last frame is the PNG (up to the GIF's 255 colours)
    assert np.abs(frames[-1] - last.astype(int)).mean() < 2


def test_batches_gif_and_methods_png(tmp_path: Path, capsys) -> None:
    gif, png = tmp_path / "b.gif", tmp_path / "m.png"
    assert main(["batches", "--epochs", "2", "-o", str(gif)]) == 0
    assert Image.open(gif).n_frames > 10
    assert main(["methods", f"@{ROOT / 'samples' / 'lecture.expr'}", "-o", str(png), "--theme", "dark"]) == 0
    pixels = _image(png.read_bytes())
    assert tuple(pixels[1, 1]) == (0x1E, 0x1E, 0x1E)


def test_run_charts_as_png(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).parent))
    from train_support import LINEAR_SPEC, train_here, write_spec

    train_here(tmp_path / "run", write_spec(tmp_path, LINEAR_SPEC), batch_size=16, lr=0.05, max_steps=4,
               val_fraction=0.0)
    out = tmp_path / "charts.png"
    assert main(["export", str(tmp_path / "run"), "-o", str(out)]) == 0
    pixels = _image(out.read_bytes())
    assert tuple(pixels[1, 1]) == (255, 255, 255) and pixels.min() < 50
    assert main(["export", str(tmp_path / "run"), "-o", str(tmp_path / "charts.gif")]) == 2
    assert "run charts are written as .svg or .png, not .gif" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    ([*DESCENT, "-o", "map.pdf"], "the map is written as .svg, .png or .gif, not .pdf"),
    (["methods", "x**2", "--at", "x=1", "-o", "e.gif"], "the error curve is written as .svg or .png"),
    (["export", "@samples/lecture.expr", "-o", "g.svg", "--theme", "dark"], "the graph is drawn on white paper only"),
])
def test_bad_chart_files_are_one_line_exit_2(args, message: str, capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT if args[0] == "export" else tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_without_pillow_png_and_gif_name_the_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['PIL'] = None\n"
            "from gradviz.cli import main\n"
            f"sys.exit(main({[*DESCENT, '-o', str(tmp_path / 'd.gif')]!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "gradviz: error: writing .gif needs Pillow: pip install 'gradviz[images]' (or Pillow==13.0.0)"]


def test_frames_message_has_one_slash(tmp_path: Path, capsys) -> None:
    folder = str(tmp_path / "frames") + "/"
    assert main(["export", f"@{ROOT / 'samples' / 'lecture.expr'}", "--mode", "tangent", "--frames", folder]) == 0
    out = capsys.readouterr().out
    assert f"frames to {tmp_path / 'frames'}/ (" in out and "//" not in out


def test_layers_export_is_light_by_default(tmp_path: Path) -> None:
    light, dark = tmp_path / "l.svg", tmp_path / "d.svg"
    source = f"@{ROOT / 'samples' / 'backprop.expr'}"
    assert main(["export", source, "--layers", "-o", str(light)]) == 0
    assert main(["export", source, "--layers", "-o", str(dark), "--theme", "dark"]) == 0
    assert 'fill="#ffffff"' in light.read_text() and 'fill="#ffffff"' not in dark.read_text()
