"""The run directory: the whole contract between the trainer and the monitor, so nothing
here imports torch or textual. Each module holds one kind of file: ``paths`` (where each
file lives), ``jsonl`` (the append-only logs), ``files`` (atomic JSON writes and reads),
``status`` (status.json and how a trainer ended), ``control`` (the monitor's commands),
``heartbeat`` (the step reached). The statistics' layout is ``gradviz.step_stats``;
process liveness is ``gradviz.processes``. This package's __init__ imports nothing.
Layout of ``runs/<name>/``::

    config.json     the resolved TrainConfig
    meta.json       what the trainer found: layers, dropout layers, sizes, device, world
    status.json     state (starting, running, paused, finished, stopped, failed), message
    metrics.jsonl   one JSON object per logged step, appended and flushed line by line
                    (its statistics named by gradviz.step_stats.STEP_STATS)
    masks.jsonl     dropout-mask samples, one JSON object per logged step
    histograms.jsonl  per-layer gradient-value histograms (fixed log-spaced bins) at logged steps
    nan_step.pt, nan_trace.json  the first non-finite step's batch and parameters, and its traced origin
    last_finite.pt  the parameters before that step (final.pt of a run that went on holds NaN ones)
    control.json    commands from the monitor (pause, resume, stop), polled by the trainer
    heartbeat       the step and epoch the trainer has reached, rewritten in place every step
    error.txt       the traceback when the run failed
    worker.log      the worker's stdout and stderr
    final.pt        the last checkpoint; best.pt the one with the lowest validation loss
"""
