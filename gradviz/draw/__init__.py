"""Drawing computation graphs: Graphviz lays out, gradviz rasterises into character cells.

A pipeline whose stages hand each other the frozen data of handoff.py: look (look.py,
fold.py, bridge.py: boxes and edges) -> measure and rank (layout.py, `dot`) -> route
(route.py, channel.py: cells and orthogonal edges) -> raster (raster.py: a character
grid); pipeline.py runs them, compound.py once per module scope. terminal.py makes a rich
renderable and the stepper's drawing of them; export.py writes SVG/PNG/PDF/DOT through
Graphviz. Nothing here imports textual or torch.
"""
