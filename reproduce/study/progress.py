"""What a command runs: each unit of work announced before it runs (`[2/5] depth-4 net,
near-zero init (l4): 10 learning rates x 100,000 iterations`), one progress bar with
elapsed time and time left for the whole command (plain lines when the output is not
a terminal), and a record of what finished, for the message after an interruption.

Work is counted in copy-iterations of the sweep (one learning rate, one step, l4);
other units are weighted by their rough relative cost so that the time left is
meaningful when a command mixes them.
"""

import contextlib
import sys

from tfovp.progress import Progress

# Rough cost of one step, in l4 sweep copy-steps (measured on the project's CPU:
# ~3 us per copy-step for l2 in its Gram form, ~20 us for l4, ~70 ms per MNIST step).
L2_COPY_STEP = 0.15
MNIST_STEP = 3500.0
SECONDS_PER_WORK = 20e-6  # one l4 copy-step on the project's 2-core CPU, for the plan's time estimate
# Planned work of a tuned family (`tfovp.tuning`) in units of its grid sweep: the grid,
# a refinement of ~12-17 rates and a grid end or two; settled with the real work when
# the family is done (`Job.settle`).
TUNING_WORK = 2.5


def copy_step_work(p):
    """Work of one step of one sweep copy with an l_p loss."""
    return L2_COPY_STEP if p == 2 else 1.0


def sweep_work(copies, steps, p, tuned=False):
    """Planned work of a sweep of `copies` copies for `steps` updates (steps + 1 losses),
    with the stages of its tuning if `tuned`."""
    return copies * (steps + 1) * copy_step_work(p) * (TUNING_WORK if tuned else 1.0)


class Task:
    """One unit of work in progress; `advance(steps)` moves the job's bar."""

    def __init__(self, job, work, per_step):
        self.job, self.work, self.per_step, self.moved = job, work, per_step, 0.0

    def advance(self, steps):
        amount = min(steps * self.per_step, self.work - self.moved)
        self.moved += amount
        self.job.bar().advance(amount)

    def done(self, text):
        """The unit finished (early finishes count as the whole unit); `text` goes to
        the record of finished units (None: a stage of a unit, not recorded)."""
        self.job.bar().advance(self.work - self.moved)
        self.moved = self.work
        if text is not None:
            self.job.finished.append(text)


class Job:
    """The command-level view of a run.

    Args:
        name: shown before the bar (e.g. "figure3").
        command: the command line, recorded with the outputs (claims.md).
        stream: where announcements and progress go (default: stderr).
    """

    def __init__(self, name, command=None, stream=None):
        self.name, self.command = name, command or name
        self.stream = stream or sys.stderr
        self.units, self.work, self.started = 0, 0.0, 0
        self.finished = []  # one line per finished unit
        self.written = set()  # store files written by this command (reused, never retrained)
        self._arrived = set()  # store files of units finished elsewhere, counted on arrival
        self._plans = set()
        self._bar = None
        self._announced = False

    def plan(self, name, units, work):
        """Plan the `units` units (`work` in all) of part `name` of the command, once: a
        command that plans all its parts up front makes the parts' own plans no-ops."""
        if name not in self._plans:
            self._plans.add(name)
            self.expect(units, work)

    def expect(self, units, work):
        """Plan `units` more units of `work` in all."""
        self.units += units
        self.work += work
        if self._bar is not None:
            self._bar.add_total(work)

    def bar(self):
        if self._bar is None:
            self._bar = Progress(max(self.work, 1.0), description=self.name, unit="work", stream=self.stream)
        return self._bar

    def write(self, text):
        self.bar().write(text)

    def _announce_plan(self):
        """Before the first unit: the whole plan, with a time estimate for this project's
        CPU (the units never change afterwards; only the work can settle)."""
        if self._announced or not self.units:
            return
        self._announced = True
        minutes = self.work * SECONDS_PER_WORK / 60
        estimate = f"about {minutes:,.0f} min" if minutes >= 1 else "under a minute"
        self.write(f"plan: {self.units} unit{'s' * (self.units > 1)} of work, {estimate} on a 2-core CPU like the "
                   "project's (less for what --resume finds finished)")  # fmt: skip

    def start(self, text, steps, per_step, unit=True):
        """Announce and start `steps` steps worth `per_step` each: a planned unit, or with
        `unit=False` a further stage of the unit in progress (announced without a
        number; its work was part of the unit's plan, see `settle`)."""
        self._announce_plan()
        if unit:
            self.started += 1
            self.write(f"[{self.started}/{max(self.units, self.started)}] {text}")
        else:
            self.write(text)
        return Task(self, steps * per_step, per_step)

    def settle(self, planned, done):
        """A unit planned as `planned` work took `done`: the difference moves the bar (or
        grows the plan), so that the time left stays honest."""
        if done < planned:
            self.bar().advance(planned - done)
        elif done > planned:
            self.expect(0, done - planned)

    def reuse(self, text, work, done_now=False):
        """A unit that needs no work (finished earlier, or by this command already): its
        work leaves the bar's total, so that the time left is measured on the work this
        invocation does (after `--resume` it would otherwise look faster than it is).
        `done_now`: the unit ran in this invocation elsewhere; its work counts as done."""
        self._announce_plan()
        self.started += 1
        self.write(f"[{self.started}/{max(self.units, self.started)}] {text}")
        if done_now:
            self.bar().advance(work)
        else:
            self.bar().add_total(-work)
        self.finished.append(text)

    def arrived(self, path, text, work):
        """A unit that ran elsewhere (`reproduce.study.cluster`) and was stored at `path`."""
        self.reuse(text, work, done_now=True)
        self.written.add(path)
        self._arrived.add(path)

    def counted_on_arrival(self, path):
        """Whether `path` came from a unit `arrived` already counted (asked once: a second
        use of the same record, e.g. by another figure, counts as a reuse)."""
        if path in self._arrived:
            self._arrived.remove(path)
            return True
        return False

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextlib.contextmanager
def job_scope(job, name):
    """`job` if given (its owner closes it), else a Job of its own, closed at the end."""
    if job is not None:
        yield job
        return
    job = Job(name)
    try:
        yield job
    finally:
        job.close()
