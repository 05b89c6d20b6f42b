"""The lecture's three ways to differentiate, side by side: numerical, symbolic (SymPy), AD.

`numeric` (numpy only) sweeps finite differences over step sizes; `symbolic` turns the
graph into a SymPy expression and differentiates it; `compare` runs all three on one
function at one point. Views live in gradviz.views.methods and gradviz.methods.svg.
"""
