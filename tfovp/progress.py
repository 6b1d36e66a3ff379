"""Progress reports for long jobs: a tqdm bar on a terminal, and plain lines (at most
one per `interval` seconds, formatted by tqdm, no control codes) when the output is
redirected to a file or a pipe."""

import sys
import time

from tqdm import tqdm


class Progress:
    """Overall progress of a job measured in `unit`s of work.

    Args:
        total: planned amount of work (may grow with `add_total`).
        description: shown before the bar or at the start of each line.
        unit: what is counted.
        stream: where to write (default: sys.stderr).
        interval: seconds between plain-text lines when `stream` is not a terminal.
    """

    def __init__(self, total, description="", unit="it", stream=None, interval=30.0):
        self.stream = stream or sys.stderr
        self.description, self.unit, self.interval = description, unit, interval
        self.total, self.done = float(total), 0.0
        self.started = self._last_line = time.monotonic()
        interactive = getattr(self.stream, "isatty", lambda: False)()
        self.bar = (
            tqdm(
                total=self.total,
                desc=description,
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
                unit_scale=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
            )
            if interactive
            else None
        )

    def write(self, text):
        """Print a line of text above the bar (or as a plain line)."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def add_total(self, amount):
        self.total += amount
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def advance(self, amount):
        self.done += amount
        if self.bar is not None:
            self.bar.update(amount)
        elif time.monotonic() - self._last_line >= self.interval:
            self._line()

    def _line(self):
        self._last_line = time.monotonic()
        meter = tqdm.format_meter(
            min(self.done, self.total),
            self.total,
            self._last_line - self.started,
            prefix=self.description,
            unit=self.unit,
            unit_scale=True,
            bar_format="{desc}: {percentage:3.0f}% [elapsed {elapsed}, left {remaining}]",
        )
        print(meter, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.done:
            self._line()
