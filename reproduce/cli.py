"""The `reproduce` modules' command lines: the flags of their Config dataclasses
(`tfovp.cli`) plus `--out`, the `--quick` presets, validation before anything is loaded
or trained, and the end of a run: a summary line, one line for a user's mistake (exit
status 2), for missing data or a corrupt shared file (exit status 1), or for Ctrl-C,
saying what finished and how to resume (exit status 130). `--help` imports no
TensorFlow.
"""

import argparse
import dataclasses
import importlib.util
import os
import pathlib
import re
import shlex
import sys
import time

from tfovp.cli import ArgumentParser, add_config_flags, check, check_values, config_from, setting

__all__ = [
    "DEFAULT_OUT",
    "MAX_STEPS",
    "ClusterConfig",
    "check",
    "check_out",
    "check_tag",
    "check_values",
    "main",
    "parse",
    "setting",
]

DEFAULT_OUT = "runs"
QUICK_OUT = "runs/quick"  # --quick without --out: smoke runs never mix their claim rows with a real run's
MAX_STEPS = 10**8  # ~1 month of the l4 sweep on 2 cores: a larger budget is a typo


@dataclasses.dataclass
class ClusterConfig:
    """The flags of a study whose independent units can run on a Ray cluster
    (`reproduce.study.cluster`); they change where units run, never what they compute."""

    cluster: str = setting("none", "where the units run: none (this process) or ray (a Ray cluster)", ("none", "ray"))
    address: str | None = setting(
        None, "Ray cluster to join (e.g. auto or HOST:6379; default: $RAY_ADDRESS, else a local instance)"
    )
    threads: int = setting(
        0, "threads of every unit (TensorFlow intra-op and BLAS), here and on the workers (0: this machine's CPUs)"
    )

    def check_cluster(self):
        check(self.cluster in ("none", "ray"), f"--cluster {self.cluster}: expected none or ray")
        check(self.threads >= 0, f"--threads {self.threads}: expected an integer >= 0")
        check(
            self.threads == 0 or importlib.util.find_spec("threadpoolctl") is not None,
            f"--threads {self.threads}: needs threadpoolctl to pin BLAS (pip install 'tfovp[cluster]')",
        )
        check(self.address is None or self.cluster == "ray", f"--address {self.address}: needs --cluster ray")
        check(
            self.cluster != "ray" or all(importlib.util.find_spec(m) for m in ("ray", "threadpoolctl")),
            "--cluster ray: Ray is not installed (pip install 'tfovp[cluster]')",
        )

    def cluster_target(self):
        """The `reproduce.study.cluster.Cluster` to use, or None for this process."""
        if self.cluster != "ray":
            return None
        from reproduce.study.cluster import Cluster

        return Cluster(self.address, self.threads)


def check_tag(tag):
    """Raise ValueError unless `tag` (a suffix of output file names) is letters, digits, . _ -."""
    check(re.fullmatch(r"[A-Za-z0-9._-]*", tag) is not None, f"--tag {tag}: expected letters, digits, '.', '_' or '-'")


def check_out(out):
    """Raise ValueError unless `out` is (or can be made) a writable folder."""
    path = pathlib.Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"--out {out}: cannot write there ({error.strerror or error})") from None


def parse(config_cls, argv, prog, description):
    """(config, out) from the command line: the Config's defaults, then its QUICK preset
    for what was not given if --quick, then the flags given."""
    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--out",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"output folder (default: {DEFAULT_OUT}/, or {QUICK_OUT}/ with --quick; git-ignored; `--out results` "
        "replaces the committed results)",
    )
    given = vars(add_config_flags(parser, config_cls).parse_args(argv))
    out = given.pop("out", QUICK_OUT if given.get("quick") else DEFAULT_OUT)
    try:
        config = config_from(config_cls, given, getattr(config_cls, "QUICK", {}) if given.get("quick") else None)
        check_out(out)
        check_output_flags(config)
    except ValueError as error:
        parser.error(str(error))
    return config, out


def check_output_flags(config):
    """Raise ValueError naming the flag of an output folder the run could not write
    (--tensorboard), before anything is loaded or trained."""
    from tfovp.files import output_problem

    path = getattr(config, "tensorboard", None)
    problem = path and output_problem(path, folder=True)
    check(not problem, f"--tensorboard {path}: {problem}")


def main(run, config_cls, description, argv=None, prog=None):
    """Parse, validate, run `run(config, out, job)` and report; the entry point of every
    `reproduce` module. Returns what `run` returns."""
    from reproduce.study.progress import Job
    from reproduce.study.store import StudyError
    from tfovp.console import import_tensorflow_quietly, stop_on_sigterm, stop_status, stop_word, stops_surfaced
    from tfovp.datasets import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    config, out = parse(config_cls, argv, prog, description)
    job = Job(prog.split(".")[-1], command=" ".join([prog, *map(shlex.quote, argv)]))
    started = time.time()
    stop_on_sigterm()
    try:
        with stops_surfaced():
            try:
                import_tensorflow_quietly()
                if getattr(config, "threads", 0):  # the same threads as the cluster's units
                    from reproduce.study.cluster import pin_threads

                    pin_threads(config.threads)
                result = run(config, out, job)
            finally:
                job.close()  # the progress bar ends before any message
    except KeyboardInterrupt as error:
        done = f"{len(job.finished)} of {max(job.units, len(job.finished))} runs finished and are stored in {out}/"
        print(
            f"\n{prog}: {stop_word(error)}; {done}; rerun the same command with --resume to continue", file=sys.stderr
        )
        raise SystemExit(stop_status(error)) from None
    except (DatasetError, StudyError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as error:  # no space left, no permission, ...: name the file, say what is kept
        done = f"{len(job.finished)} finished runs are stored in {out}/.curves"
        where = f" {error.filename}" if error.filename else ""
        print(
            f"{prog}: error: {where.strip() or 'a file'}: {error.strerror or error}; {done}; free space or fix the "
            "permissions, then rerun the same command with --resume",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    for line in verdict_lines(result, out):
        print(line, file=sys.stderr)
    print(f"wrote {out}/ in {time.time() - started:,.1f} s", file=sys.stderr)
    return result


def verdict_lines(result, out):
    """The verdicts this run wrote, a line each under a line per figure with their counts
    and where the figure and `claims.md` are (nothing for runs without claims)."""
    summaries = [result] if isinstance(result, dict) and "claims" in result else []
    if isinstance(result, dict) and not summaries:  # reproduce.all: {figure: summary}
        summaries = [r for r in result.values() if isinstance(r, dict) and "claims" in r]
    lines = []
    for summary in summaries:
        claims, name = summary["claims"], summary.get("figure", "")
        if not claims:
            continue
        counts = ", ".join(f"{sum(c['verdict'] == v for c in claims)} {v}" for v in ("PASS", "FAIL", "INCONCLUSIVE"))
        figure = pathlib.Path(out) / f"{name}.png"
        where = f"{pathlib.Path(out) / 'claims.md'}" + (f", {figure}" if figure.is_file() else "")
        lines.append(f"{name}: {len(claims)} claims, {counts} ({where})")
        lines += [f"  {c['verdict']:<12} {c['claim']}" for c in claims]
    return lines
