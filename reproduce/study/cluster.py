"""A study's independent units spread over a Ray cluster (`--cluster ray`).

A unit is one piece of a grid that needs nothing from the others: one curve family's
learning-rate grid, one MNIST run. Each becomes one Ray task; the driver (the command
the user started) stores every record as it arrives, atomically, in the same store the
single-machine path uses, so `--resume` and the figures' code never know where a unit
ran. A task that raises or whose worker dies is retried once; a unit that fails twice
is named in the output and in the error that ends the command, after every other unit
has finished and been stored (rerun with `--resume` to redo only the failed ones).

Identical results: a unit computes exactly what the single-machine path computes when
it runs with the same numbers of threads (a matrix product's summation order depends on
them): every task pins TensorFlow's intra-op pool to `threads` (default: the driver's
CPU count, which is what TensorFlow uses by default) and NumPy's BLAS to the driver's
BLAS thread count (a Ray worker's BLAS starts with one thread; float64 diagnostics such
as the spectral norms differ in their last bits otherwise), and asks Ray for `threads`
CPUs. On one machine Ray therefore runs one unit at a time, as the single-machine path
does; a cluster runs one per `threads` CPUs of every node.

Ray is imported only here, and only when a command is given `--cluster ray`.
"""

import dataclasses
import os
import time
from collections.abc import Callable

from reproduce.study.store import RecordStore, StudyError

RETRIES = 1  # a failing unit is run at most 1 + RETRIES times


def default_threads():
    """The CPUs this process may run on: TensorFlow's default intra-op thread count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Unit:
    """One independent unit: `function(*args)` returns the record kept as `store[key]`.
    `function` must be importable on the workers (a module-level function of tfovp,
    reproduce or mnist_tutorial)."""

    name: str
    store: RecordStore
    key: str
    function: Callable
    args: tuple
    work: float  # planned work, for the progress bar
    gpu: bool = False  # asks for one GPU where the cluster has GPUs


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where units run. `address`: a running cluster ("auto", "ray://host:10001",
    "host:6379"); None honours $RAY_ADDRESS, else starts a local instance on this
    machine's cores. `threads`: intra-op threads of every unit (0: `default_threads()`)."""

    address: str | None = None
    threads: int = 0

    @property
    def threads_per_unit(self):
        return self.threads or default_threads()


def blas_threads():
    """Threads of NumPy's BLAS in this process (None if threadpoolctl sees none)."""
    import threadpoolctl

    counts = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    return counts[0] if counts else None


def pin_threads(threads, blas=None):
    """Run TensorFlow's ops on `threads` intra-op threads in this process (before its
    first op; a worker reused for a second unit already has them) and NumPy's BLAS on
    `blas` threads (default: `threads`)."""
    import tensorflow as tf
    import threadpoolctl

    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    threadpoolctl.threadpool_limits(limits=blas or threads, user_api="blas")


def _execute(function, encode, threads, blas, *args):
    """What a Ray task runs: the unit, with its threads pinned as the driver's; its
    record comes back in the store's JSON form (no TensorFlow objects travel)."""
    from tfovp.console import import_tensorflow_quietly

    import_tensorflow_quietly()
    pin_threads(threads, blas)
    started = time.time()
    record = encode(function(*args))
    return record, time.time() - started, os.uname().nodename


def _import_ray():
    try:
        import ray
        import threadpoolctl  # noqa: F401  (pins the workers' BLAS)
    except ImportError as error:
        raise StudyError(f"--cluster ray needs {error.name}: pip install 'tfovp[cluster]'") from None
    return ray


CONNECT_TIMEOUT_S = 30  # a cluster address that does not accept a connection within this is given up


def _check_reachable(address):
    """StudyError within CONNECT_TIMEOUT_S if nothing listens at a "host:port" address
    (Ray itself would retry for minutes); "auto" and local instances are not probed."""
    import socket

    host_port = address.split("://", 1)[-1]
    if address == "auto" or ":" not in host_port:
        return
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise StudyError(
            f"--address {address}: no Ray cluster answers there within {CONNECT_TIMEOUT_S} s "
            f"({getattr(error, 'strerror', None) or error})"
        ) from None


def _connect(ray, cluster):
    if not ray.is_initialized():
        address = cluster.address or os.environ.get("RAY_ADDRESS") or None
        if address:
            _check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        except ConnectionError as error:
            raise StudyError(f"--address {address}: no Ray cluster there ({error})") from None
    resources = ray.cluster_resources()
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    if largest < cluster.threads_per_unit:
        raise StudyError(
            f"--threads {cluster.threads_per_unit}: no node of the Ray cluster has that many CPUs "
            f"(largest: {largest:g}); pass --threads {int(largest)} or less"
        )
    return resources


def _failure(error, limit=160):
    """One short line for a unit's last failure."""
    cause = getattr(error, "cause", None) or error
    text = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(cause).__name__}: {text}"


def _shared_arguments(ray, units):
    """{id: object ref} of every argument that several units share (e.g. one problem's
    data): put in Ray's object store once instead of once per task."""
    seen, shared = {}, {}
    for unit in units:
        for arg in unit.args:
            if id(arg) in seen and id(arg) not in shared and not isinstance(arg, (int, float, str, bool, type(None))):
                shared[id(arg)] = ray.put(arg)
            seen[id(arg)] = arg
    return shared


def run_units(units, cluster, job):
    """Run `units` on Ray, storing each record as it arrives; raise StudyError naming the
    units that failed twice once all the others are stored."""
    units = list(units)
    if not units:
        return
    ray = _import_ray()
    resources = _connect(ray, cluster)
    threads, blas = cluster.threads_per_unit, blas_threads()
    gpus = 1 if resources.get("GPU", 0) > 0 else 0
    task = ray.remote(_execute)
    job.write(
        f"Ray: {len(units)} unit{'s' * (len(units) > 1)} on {resources.get('CPU', 0):g} CPUs"
        f"{f', {gpus:g} GPUs' if resources.get('GPU') else ''} ({threads} threads per unit, "
        f"up to {int(resources.get('CPU', 0) // threads)} at once)"
    )
    options = {"num_cpus": threads, "max_retries": RETRIES, "retry_exceptions": True}
    shared = _shared_arguments(ray, units)
    pending = {}
    for unit in units:
        call = task.options(**options, num_gpus=gpus if unit.gpu else 0)
        args = [shared.get(id(arg), arg) for arg in unit.args]
        pending[call.remote(unit.function, unit.store.encode, threads, blas, *args)] = unit
    failed = []
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(done[0])
            try:
                record, seconds, node = ray.get(done[0])
            except ray.exceptions.RayError as error:
                failed.append(f"{unit.name} ({_failure(error)})")
                job.write(f"    FAILED after {1 + RETRIES} tries: {unit.name}: {_failure(error)}")
                continue
            path = unit.store.put_encoded(unit.key, record)
            job.arrived(path, f"{unit.name}: done on {node} in {seconds:,.1f} s", unit.work)
    finally:
        for ref in pending:  # interrupted: nothing finished is lost, the rest is cancelled
            ray.cancel(ref, force=True)
    if failed:
        raise StudyError(
            f"{len(failed)} of {len(units)} units failed on the cluster: {'; '.join(failed)}; the others are "
            "stored, rerun with --resume to redo only these"
        )
