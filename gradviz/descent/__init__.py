"""Gradient descent you can watch: objectives of two inputs, optimizer paths, maps of a surface.

The math (objective, paths, batches, surface, scale; the optimizers are
gradviz.optimizers') is numpy only, like gradviz.core; terminal.py and draw.py render
with rich, svg.py writes plain SVG text.
torch is never imported here (the landscape of real models lives in gradviz.landscape),
and textual only by gradviz.tui.descent.
"""
