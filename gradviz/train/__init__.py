"""Real training of a spec's model in its own process, written to a run directory.

This package's __init__ imports nothing: the monitor imports ``gradviz.train.runlog``
(the file format) and must not pay for torch.
"""
