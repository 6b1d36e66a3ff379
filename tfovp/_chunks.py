"""The sweep's steps run as a series of compiled calls, whatever the backend."""

import time

import numpy as np


def run_in_chunks(chunk, steps, chunk_size, progress, snapshot_steps=(), snapshot=None):
    """Steps 0..`steps` in compiled calls `chunk(start, stop)` of at most `chunk_size`
    steps, each returning the step it reached (short of `stop` once every copy has
    diverged); `progress(steps)` after each. A call ends after each of `snapshot_steps`,
    where `snapshot(step)` runs (once every copy has diverged nothing changes any more:
    the snapshots still due are taken at the end). Returns the steady-state seconds per
    step (the chunks after the first, which includes compilation; NaN with one chunk)."""
    t = 0
    steady_seconds, steady_steps = 0.0, 0
    due = sorted({int(s) for s in snapshot_steps if 0 <= s <= steps})
    while t <= steps:
        stop = min([t + chunk_size, steps + 1, *(s + 1 for s in due)])
        chunk_started = time.perf_counter()
        reached = chunk(t, stop)
        if t > 0:
            steady_seconds += time.perf_counter() - chunk_started
            steady_steps += reached - t
        if progress is not None:
            progress(stop - t)
        while due and (due[0] < stop or reached < stop):
            snapshot(due.pop(0))
        if reached < stop:  # every copy diverged
            break
        t = stop
    return steady_seconds / steady_steps if steady_steps else float("nan")


def snapshots_array(spec, snapshots):
    """(K, C, J) the `last_above` kept after each of `spec.snapshot_steps` (`snapshots`:
    step -> (C, J)), in their order; None without snapshot steps or thresholds."""
    if not spec.snapshot_steps or not spec.thresholds.size:
        return None
    return np.stack([np.asarray(snapshots[s], np.int64) for s in spec.snapshot_steps])
