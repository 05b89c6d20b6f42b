"""Drawing computation graphs: Graphviz lays out, gradviz rasterises into character cells.

layout (specs -> dot -> ranks and cross positions), route (cells and orthogonal edges),
raster (a character grid), terminal (a rich renderable), look (how a trace looks),
export (SVG/PNG/PDF/DOT through Graphviz). Nothing here imports textual or torch.
"""
