"""Drawing cost against Graphviz's own, measured in one run (this machine is noisy: ratios).

For random computation-graph-like DAGs of 200, 1000 and 2000 nodes:
- terminal: dot -Tplain + gradviz's parse, ranks, routing and rasterising, against a plain
  `dot -Tjson` of the very same DOT; "adds" is gradviz's own share over dot's time;
- export: gradviz's SVG (DOT built from the look, dot -Tsvg, titles rewritten) against a
  plain `dot -Tsvg` of the same DOT.
Each figure is the best of three. Run: PYTHONPATH=. python benchmarks/bench_draw.py [sizes…]
"""

from __future__ import annotations

import random
import sys
import time
from typing import Callable

from gradviz.draw.dot import run_dot
from gradviz.draw.export import Picture, dot_source as export_dot, render
from gradviz.draw.handoff import BoxSpec, EdgeSpec
from gradviz.draw.layout import dot_source, measure, rank, read_ranks
from gradviz.draw.look import GraphLook
from gradviz.draw.raster import rasterise
from gradviz.draw.route import place


def random_graph(n: int, seed: int = 1) -> tuple[list[BoxSpec], list[EdgeSpec]]:
    """Boxes like a trace's (a definition, a value, an adjoint), fan-in 1–3 from recent nodes."""
    rnd = random.Random(seed)
    boxes = [BoxSpec(f"n{i}", (f"v{i} = {rnd.choice(['exp', 'log', 'tanh'])}(v{max(i - 1, 0)})",
                               f"{rnd.uniform(-9, 9):.4f}", f"v̄{i} = {rnd.uniform(-9, 9):.4f}"), "op")
             for i in range(n)]
    edges = [EdgeSpec(f"n{rnd.randrange(max(0, i - 20), i)}", f"n{i}")
             for i in range(1, n) for _ in range(rnd.choice([1, 1, 2, 2, 3]))]
    return boxes, edges


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(n: int) -> None:
    boxes, edges = random_graph(n)
    sized = measure(boxes, edges)
    source = dot_source(boxes, edges, sized.sizes, {})
    t_json = best(lambda: run_dot(source, "json"))
    t_plain = best(lambda: run_dot(source, "plain"))
    plain = run_dot(source, "plain").decode()
    t_read = best(lambda: read_ranks(plain, sized))
    ranked = rank(sized)
    t_place = best(lambda: place(ranked))
    layout = place(ranked)
    t_raster = best(lambda: rasterise(layout, boxes, edges))
    ours = t_read + t_place + t_raster
    total = t_plain + ours
    print(f"{n:5d} nodes {len(edges):5d} edges | dot -Tjson {t_json * 1000:6.0f} ms | dot -Tplain {t_plain * 1000:6.0f} | "
          f"read {t_read * 1000:4.0f} | route {t_place * 1000:4.0f} | raster {t_raster * 1000:4.0f} | "
          f"layout+raster / dot -Tjson {total / t_json:4.2f} | gradviz adds {ours / t_json:4.0%} of dot's time | "
          f"grid {layout.width}x{layout.height}")

    picture = Picture(GraphLook(tuple(boxes), tuple(edges), ()), {b.key: b.lines[0] for b in boxes}, "bench")
    dot_text = export_dot(picture)
    t_svg_plain = best(lambda: run_dot(dot_text, "svg"))
    t_export = best(lambda: render(picture, "svg"))
    print(f"{'':5s}{'':12s} | export svg {t_export * 1000:6.0f} ms | plain dot -Tsvg {t_svg_plain * 1000:6.0f} ms | "
          f"export / dot -Tsvg {t_export / t_svg_plain:4.2f}")


if __name__ == "__main__":
    for size in [int(a) for a in sys.argv[1:]] or [200, 1000, 2000]:
        bench(size)
