"""The core: graph IR, op rules, the three passes, the trace and its steps.

Imports only the standard library and numpy (networkx lazily), never rich, textual,
graphviz or torch.
"""
