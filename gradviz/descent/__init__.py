"""Gradient descent you can watch: objectives of two inputs, optimizer paths, maps of a surface.

numpy only (like gradviz.core): torch is imported lazily by the landscape, textual only by
gradviz.tui.descent.
"""
