"""Speed of full-batch training on data of the Ethanol problem's shape (2565 x 128, k = 1).

For depths 1, 2, 3, 8 (hidden width 1) it measures microseconds per full-batch GD step:
  fit       naive Keras: model.fit(batch_size=2565), one epoch per step
  tape      a Python loop over a tf.function step with tf.GradientTape
  sweep     tfovp.sweep.sweep, one learning rate (XLA while-loop)
  sweep/lr  tfovp.sweep.sweep with a 10-value grid, time per step divided by 10
and the peak-memory growth of a sweep from 10^4 to 10^5 steps with 11 recorded losses.
With `--copies C` it also compares, per learning-rate step with C copies (seeds x
rates batched), the sweep against a bare XLA while-loop doing only the work every GD
step on this problem needs (for l_p, p != 2: the residual product X W^T, the power, the
gradient product, the update; 4 m d C flops), with the flop rate reached and its
fraction of the machine's FMA peak (cores x clock x flops per cycle, stated).
Compilation is excluded everywhere (warm-up, or the sweep's first chunk).

    python bench/sweep_speed.py [--loss 2|4] [--copies 50] [--peak-flops-per-cycle 32]
        [--markdown results/benchmarks.md] [--smoke]

`--smoke` runs every measurement for a few steps (depths 1 and 2; numbers meaningless):
CI runs it so that the script cannot break unnoticed.
"""

import argparse
import os
import platform
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _table import publish  # noqa: E402 (this folder: the script's own)

from tfovp.layers import DeepLinear  # noqa: E402
from tfovp.losses import LpLoss  # noqa: E402
from tfovp.sweep import sweep  # noqa: E402

GRID = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1]
M, D = 2565, 128


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(M, D)).astype("float32")
    return x, (x @ rng.normal(size=(D, 1)) * 0.1).astype("float32")


def _model(depth, p):
    model = keras.Sequential([keras.Input((D,)), DeepLinear(1, depth, kernel_initializer="near_zero")])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss=LpLoss(p))
    return model


def time_fit(depth, p, x, y, epochs=40):
    model = _model(depth, p)
    model.fit(x, y, batch_size=M, epochs=3, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=M, epochs=epochs, verbose=0)
    return (time.perf_counter() - started) / epochs


def time_tape(depth, p, x, y, steps=300):
    model = _model(depth, p)
    loss_fn, optimizer = model.loss, model.optimizer
    xs, ys = tf.constant(x), tf.constant(y)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(ys, model(xs))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    for _ in range(5):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        loss = step()
    float(loss)
    return (time.perf_counter() - started) / steps


def time_sweep(depth, p, x, y, rates, steps):
    result = sweep(x, y, rates, steps, depth=depth, loss=p, record_steps=[0, steps], chunk_size=max(steps // 5, 1))
    return result.seconds_per_step


def time_bare_loop(p, x, y, copies, steps):
    """Seconds per step of the minimal compiled GD loop on C linear models (depth 1)."""
    xs, yt = tf.constant(x), tf.constant(y.T)
    weights = tf.Variable(tf.zeros((copies, D)))
    rates = tf.constant(np.geomspace(1e-5, 1e-3, copies)[:, None], tf.float32)

    @tf.function(jit_compile=True)
    def run(n):
        def body(t, w):
            residual = tf.matmul(w, xs, transpose_b=True) - yt  # (C, m)
            slope = residual * residual * residual if p == 4 else residual * tf.abs(residual) ** (p - 2)
            return t + 1, w - rates * (tf.matmul(slope, xs) / M)

        return tf.while_loop(lambda t, _: t < n, body, (tf.constant(0), weights.read_value()))[1]

    run(tf.constant(10)).numpy()  # compile
    started = time.perf_counter()
    run(tf.constant(steps)).numpy()
    return (time.perf_counter() - started) / steps


def peak_flops(flops_per_cycle):
    """cores x clock x flops per cycle (the clock from /proc/cpuinfo; None if unknown)."""
    try:
        with open("/proc/cpuinfo") as handle:
            mhz = next(float(line.split(":")[1]) for line in handle if line.startswith("cpu MHz"))
    except (OSError, StopIteration, ValueError):
        return None, None
    return os.cpu_count() * mhz * 1e6 * flops_per_cycle, mhz


def compare_with_bare_loop(x, y, p, copies, steps, flops_per_cycle):
    """Rows (depth, sweep us per lr-step, bare us per lr-step, ratio, GFLOP/s, % of peak)."""
    rates = list(np.geomspace(1e-5, 1e-3, copies))
    bare = time_bare_loop(p, x, y, copies, steps)
    flops = 4 * M * D * copies  # the two products per step
    peak, mhz = peak_flops(flops_per_cycle)
    rows = []
    for depth in (1, 2, 3):
        swept = time_sweep(depth, p, x, y, rates, steps)
        rows.append((depth, swept / copies, bare / copies, swept / bare, flops / swept / 1e9, flops / bare / 1e9))
    return rows, peak, mhz


def peak_memory_growth(x, y, p, budgets=(10_000, 100_000)):
    """Peak RSS after a 10^4-step and then a 10^5-step sweep (MB)."""
    peaks = []
    for steps in budgets:
        sweep(x, y, GRID, steps, depth=3, loss=p, record_steps=np.linspace(0, steps, 11).astype(int), chunk_size=20_000)
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return peaks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss", type=float, default=4.0, help="p of the l_p loss (2 uses the Gram form)")
    parser.add_argument("--steps", type=int, default=10_000, help="steps per sweep measurement")
    parser.add_argument("--copies", type=int, default=0, help="also compare with the bare loop at this many copies")
    parser.add_argument(
        "--peak-flops-per-cycle", type=int, default=32, help="FP32 flops per cycle per core (32: two 256-bit FMA pipes)"
    )
    parser.add_argument("--skip-baselines", action="store_true", help="only the bare-loop comparison")
    parser.add_argument("--markdown", default=None, help="append the table to this file")
    parser.add_argument("--smoke", action="store_true", help="a few steps of every measurement (CI)")
    args = parser.parse_args()
    depths, fit_epochs, tape_steps, budgets = (1, 2, 3, 8), 40, 300, (10_000, 100_000)
    if args.smoke:
        args.steps, args.copies = 20, args.copies and 2
        depths, fit_epochs, tape_steps, budgets = (1, 2), 1, 2, (20, 40)
    if args.skip_baselines:
        x, y = _data()
        publish(_bare_table(x, y, args), args.markdown)
        return
    x, y = _data()
    p = args.loss
    rows = []
    for depth in depths:
        fit = time_fit(depth, p, x, y, fit_epochs)
        tape = time_tape(depth, p, x, y, tape_steps)
        single = time_sweep(depth, p, x, y, [1e-4], args.steps)
        grid = time_sweep(depth, p, x, y, GRID, args.steps) / len(GRID)
        rows.append((depth, fit, tape, single, grid))
        print(
            f"depth {depth}: fit {fit * 1e6:9.0f} us  tape {tape * 1e6:7.0f} us  "
            f"sweep {single * 1e6:6.1f} us  sweep/lr {grid * 1e6:6.1f} us",
            flush=True,
        )
    memory = peak_memory_growth(x, y, p, budgets)
    lines = [
        f"### Sweep trainer, l{p:g} loss, {M} x {D} data, one output "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__})",
        "",
        "| depth | fit (us/step) | tape loop (us/step) | sweep, 1 lr (us/step) | sweep, 10 lr (us/lr-step) "
        "| fit / sweep | tape / sweep |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for depth, fit, tape, single, grid in rows:
        lines.append(
            f"| {depth} | {fit * 1e6:.0f} | {tape * 1e6:.0f} | {single * 1e6:.1f} | "
            f"{grid * 1e6:.1f} | {fit / single:.0f}x | {tape / single:.0f}x |"
        )
    lines += [
        "",
        f"Peak RSS after a 10^4-step sweep: {memory[0]:.0f} MB; after a further 10^5-step "
        f"sweep: {memory[1]:.0f} MB (10 copies, depth 3, 11 recorded losses).",
        "",
    ]
    publish("\n".join(lines) + ("\n" + _bare_table(x, y, args) if args.copies else ""), args.markdown)


def _bare_table(x, y, args):
    rows, peak, mhz = compare_with_bare_loop(x, y, args.loss, args.copies, args.steps, args.peak_flops_per_cycle)
    peak_text = (
        f"peak {peak / 1e9:.0f} GFLOP/s = {os.cpu_count()} cores x {mhz:.0f} MHz x {args.peak_flops_per_cycle} "
        "flops/cycle (an assumption: the clock of /proc/cpuinfo, no boost, every core a full core)"
        if peak
        else "peak unknown"
    )
    lines = [
        f"### l{args.loss:g} sweep against the bare XLA loop, {args.copies} copies, {M} x {D} data, one output",
        "",
        f"{args.steps:,} steps per measurement; {peak_text}.",
        "",
        "| depth | sweep (us per lr-step) | bare loop (us per lr-step) | sweep / bare | sweep GFLOP/s | bare GFLOP/s "
        "| bare, % of peak |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for depth, swept, bare, ratio, sweep_rate, bare_rate in rows:
        share = f"{100 * bare_rate * 1e9 / peak:.0f} %" if peak else "–"
        cells = [f"{swept * 1e6:.1f}", f"{bare * 1e6:.1f}", f"{ratio:.2f}", f"{sweep_rate:.0f}", f"{bare_rate:.0f}"]
        lines.append(f"| {depth} | {' | '.join(cells)} | {share} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
