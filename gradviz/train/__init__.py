"""Real training of a spec's model in its own process, written to a run directory.

This package's __init__ imports nothing: the monitor imports ``gradviz.rundir``
(the run directory's format) and must not pay for torch.
"""
