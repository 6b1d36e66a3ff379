"""The GPU check (issue 33): the CNN experiment and Figure 3's l4 comparison on JAX, on
the device JAX picks (a GPU where its CUDA plugin finds one), with nothing of
TensorFlow. Prints the device and versions, then

  tutorial  the MNIST tutorial, original and overparameterized (fc1 3136x512 . 512x512,
            fc2 512x10 . 10x10), the tutorial's seed and settings, `--epochs` epochs:
            milliseconds per step (the steps' wall time over their count, evaluation
            every 100 steps and the first step's compilation included, as the tutorial
            times it) and the test error;
  sweep     Figure 3's l4 curves (Ethanol, standardized; depths 1, 2, 3, width 1,
            near-zero init) over the paper's grid for `--sweep-steps` full-batch steps,
            one compiled program per depth: seconds per step of all rates and S(e) =
            T_depth1 / T_depthN at the figure's levels (the grid's rates; `--tune` tunes
            them as the figure does, about 2.5x the time).

    KERAS_BACKEND=jax TFOVP_DATA_DIR=DIR python bench/gpu_check.py [--epochs 10]
        [--sweep-steps 1000000] [--tune] [--mnist-steps N]

bench/gpu.sh installs the carried wheels and runs it; `--mnist-steps 5 --sweep-steps
100` is CI's smoke run on the CPU.
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

LEVELS = (0.5, 0.2, 0.1, 0.05, 0.01)


def _device():
    import jax

    devices = jax.devices()
    return f"{devices[0].device_kind} x{len(devices)} ({devices[0].platform})"


def tutorial(epochs, steps):
    """{model: (ms per step, test error %, steps)} of the two tutorial models."""
    from mnist_tutorial.config import Config
    from mnist_tutorial.train import train_and_evaluate

    out = {}
    for name, over in (("original", False), ("overparameterized", True)):
        config = Config(overparameterize=over, epochs=epochs, steps=steps, quiet=True)
        result = train_and_evaluate(config)
        out[name] = (1000 * result.seconds / result.steps, result.test_error, result.steps)
        print(f"tutorial {name:17s} {out[name][0]:8.2f} ms/step  test error {result.test_error:.2f} %  "
              f"({result.steps:,} steps)", flush=True)  # fmt: skip
    return out


def sweep(steps, tune):
    """Figure 3's l4 comparison: seconds per step per depth and S(e) at LEVELS."""
    from tfovp.compare import compare_depths
    from tfovp.datasets import load_regression

    x, y = load_regression("ethanol", preprocessing="standardize")
    started = time.perf_counter()
    report = compare_depths(x, y, depths=(1, 2, 3), loss=4, steps=steps, tune=tune)
    seconds = time.perf_counter() - started
    for depth, family in report.families.items():
        steady = family.seconds_per_step  # NaN for a run of one chunk: then wall time, compilation included
        per_step = steady if np.isfinite(steady) else family.training_seconds / steps
        how = "steady" if np.isfinite(steady) else "wall, compilation included"
        print(f"sweep depth {depth}: {per_step * 1e3:.3f} ms per step of {family.learning_rates.size} rates "
              f"({how}), {steps:,} steps", flush=True)  # fmt: skip
    for depth in report.depths[1:]:
        cells = []
        for s in report.speedups(depth):
            if any(np.isclose(s.level, level) for level in LEVELS):
                bound = {"lower bound": ">", "upper bound": "<"}.get(s.kind, "")
                value = "not reached by either" if s.value is None else f"{bound}{s.value:.3g}"
                cells.append(f"S({s.level:g}) = {value}")
        print(f"sweep speed-up depth {depth} over depth 1 ({'tuned' if tune else 'grid'}): " + ", ".join(cells))
    print(f"sweep wall time {seconds:.1f} s", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python bench/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=10.0, help="tutorial epochs (default: 10)")
    parser.add_argument("--mnist-steps", type=int, default=None, help="tutorial steps instead of --epochs")
    parser.add_argument("--sweep-steps", type=int, default=1_000_000, help="Figure 3 steps (default: 10^6)")
    parser.add_argument("--tune", action="store_true", help="tune the sweep's rates (about 2.5x the time)")
    args = parser.parse_args(argv)
    import jax
    import keras

    if keras.backend.backend() != "jax":
        parser.error(f"runs on the JAX backend; KERAS_BACKEND={keras.backend.backend()}")
    print(f"device {_device()}; Python {platform.python_version()}, JAX {jax.__version__}, Keras {keras.__version__}")
    tutorial(args.epochs, args.mnist_steps)
    sweep(args.sweep_steps, args.tune)
    return 0


if __name__ == "__main__":
    sys.exit(main())
