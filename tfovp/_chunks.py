"""The sweep's steps run as a series of compiled calls, whatever the backend."""

import time


def run_in_chunks(chunk, steps, chunk_size, progress):
    """Steps 0..`steps` in compiled calls `chunk(start, stop)` of at most `chunk_size`
    steps, each returning the step it reached (short of `stop` once every copy has
    diverged); `progress(steps)` after each. Returns the steady-state seconds per step
    (the chunks after the first, which includes compilation; NaN with one chunk)."""
    t = 0
    steady_seconds, steady_steps = 0.0, 0
    while t <= steps:
        stop = min(t + chunk_size, steps + 1)
        chunk_started = time.perf_counter()
        reached = chunk(t, stop)
        if t > 0:
            steady_seconds += time.perf_counter() - chunk_started
            steady_steps += reached - t
        if progress is not None:
            progress(stop - t)
        if reached < stop:  # every copy diverged
            break
        t = stop
    return steady_seconds / steady_steps if steady_steps else float("nan")
