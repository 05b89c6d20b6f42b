"""gradviz: see automatic differentiation move, node by node, in the terminal."""

__version__ = "0.1.0"
