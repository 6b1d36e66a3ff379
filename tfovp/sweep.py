"""Full-batch sweeps over learning rates (and seeds) in one XLA-compiled loop.

`sweep` trains C = len(seeds) * len(learning_rates) copies of one model at once: every
weight carries a leading copy axis, and one compiled loop runs the steps: on TensorFlow
(the reference) a `tf.while_loop` inside a jit-compiled `tf.function`
(`tfovp._sweep_tf`), on JAX a `jax.lax.while_loop` inside `jax.jit` (`tfovp._sweep_jax`,
tested against it); PyTorch is refused. Per step and copy it evaluates the full-batch l_p loss
L^1(W_e) of the end-to-end kernel W_e and its gradient G_e (written out below, checked
against autodiff and finite differences in the tests), then

* update="gd": gradient descent on the factors, Eq. 4,
  W_j <- (1 - eta*lambda) W_j - eta dL/dW_j, with dL/dW_j from G_e by autodiff
  through the product W_e = W_1 ... W_N (identical to backpropagating the layered
  net, since the loss depends on the factors only through W_e);
* update="end_to_end": the end-to-end rule, Eq. 10, on a single kernel;
* update=<keras optimizer or name>: that optimizer on the factors. The optimizer runs
  with learning rate 1 on a scratch variable and the result is scaled by each copy's
  learning rate: exact for SGD (with momentum), Adam, AdaGrad, AdaDelta, RMSprop, whose
  updates are linear in the learning rate for a given gradient history.

XLA's CPU SVD returns singular vectors only to ~1e-6, even in float64, so the one
case that needs an SVD (update="end_to_end" with more than one output and input) runs
as a TensorFlow graph without XLA (JAX's SVD calls LAPACK inside its jit); the closed
form of Claim 2 (one output, as in all of the paper's linear experiments) stays compiled.

With `bias=True` every layer has a bias, as `torch.nn.Linear` has (not the paper's
setting): layer j maps h to h K_j + c_j, and the net is the affine map x W_e + b_e with
[W_e; b_e] = K~_0 K~_1 ... K~_{N-1}, K~_j = [[K_j, 0], [c_j, 1]] (the last without its
column of the constant): the loss is the l_p loss of [W_e; b_e] on [x, 1], so L* is the
optimum with an intercept. The biases start at `bias_std` x N(0, 1) (0: zeros).

Copies with the same seed share their initial weights, so a net and the rule started
with the same seed, depth, widths and initializer share W_e(0). A copy whose loss is not
finite or exceeds `divergence_factor` times its initial loss is marked diverged and
frozen; its later losses are NaN.
"""

import dataclasses
import os
import time

import keras
import numpy as np

from tfovp import initializers
from tfovp._factors import factor_shapes, hidden_widths_list, product
from tfovp.checks import check_choice, check_float_dtype, check_int, check_real
from tfovp.losses import LpLoss
from tfovp.progress import Progress

UPDATES = ("gd", "end_to_end")
REDUCTIONS = ("mean", "sum")
# Optimizer settings that would couple the copies or that the scratch-variable trick
# would silently ignore.
_UNSUPPORTED_OPTIMIZER_SETTINGS = ("clipnorm", "global_clipnorm", "weight_decay", "use_ema")


@dataclasses.dataclass
class SweepResult:
    """What `sweep` returns. Copy c has `learning_rates[c]` and `seeds[c]`.

    Attributes:
        learning_rates, seeds: (C,) per copy (seed-major: all rates of the first seed first).
        steps: (R,) recorded step numbers (step t = loss before the (t+1)-th update).
        losses: (R, C) full-batch loss; NaN from a copy's divergence on.
        diverged: (C,) bool.  diverged_at: (C,) step of divergence, -1 if none.
        final_weights: list of (C, ...) arrays: the factors (or [W_e] for the rule).
        end_to_end: (R, C, d, k) recorded W_e (Keras orientation) or None.
        end_to_end_norm: (R, C) recorded ||W_e||_F.
        balancedness: (R, C, N-1) recorded ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F (Eq. 7) or None.
        balancedness_scale: (R, C, N-1) the larger of ||W_{j+1}^T W_{j+1}||_F and
            ||W_j W_j^T||_F (about ||W_j||_F^2), the scale of each residual, or None.
        window_max: (R, C) largest loss over every step from recorded step r to the next
            (to the end for the last), +inf from divergence on; or None.
        last_above: (C, J) last step whose loss exceeded `thresholds[j]` (-1: never;
            steps after divergence do not count); or None.
        last_above_at: (K, C, J) `last_above` as it stood after each of `snapshot_steps`
            (what a run of that many steps would return), or None.
        elapsed: seconds spent, compilation included.
        seconds_per_step: steady-state time of one step of all copies, measured on the
            chunks after the first (which includes XLA compilation); NaN if one chunk.
        config: the arguments, for provenance.
    """

    learning_rates: np.ndarray
    seeds: np.ndarray
    steps: np.ndarray
    losses: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    final_weights: list
    end_to_end: np.ndarray | None
    end_to_end_norm: np.ndarray
    balancedness: np.ndarray | None
    balancedness_scale: np.ndarray | None
    window_max: np.ndarray | None
    last_above: np.ndarray | None
    elapsed: float
    seconds_per_step: float
    config: dict
    last_above_at: np.ndarray | None = None

    def relative_balancedness(self):
        """(R, C, N-1) each Eq. 7 residual over its scale (0 where both Gram matrices are
        0), or None: comparable across initialization scales."""
        if self.balancedness is None:
            return None
        scale = self.balancedness_scale
        return np.where(scale > 0, self.balancedness / np.where(scale > 0, scale, 1.0), 0.0)

    def final_end_to_end(self):
        """(C, d, k) end-to-end kernels after training ([W_e; b_e], (C, d + 1, k), with
        biases)."""
        if self.config.get("bias"):
            depth = len(self.final_weights) // 2
            return _affine_product(self.final_weights, depth)
        return product(self.final_weights)


@dataclasses.dataclass(frozen=True, eq=False)
class SweepSpec:
    """Everything a sweep trains, checked: the loss, the model, the update rule, the
    copies and what is recorded (the arguments of `sweep` less the data)."""

    p: float  # l_p loss
    reduction: str  # "mean" or "sum" over examples
    depth: int  # N
    hidden_widths: tuple  # N - 1 widths
    update: str  # "gd", "end_to_end" or "optimizer"
    optimizer: object  # the Keras optimizer of update="optimizer" (learning rate 1), else None
    initializer: object  # a Keras or tfovp initializer
    seeds: tuple  # one initialization per seed
    grid: np.ndarray  # (rates,) learning rates, shared by every seed
    steps: int  # updates
    weight_decay: float  # lambda of Eqs. 4 and 10
    divergence_factor: float | None  # loss above this multiple of L(0) = diverged
    record_steps: np.ndarray  # steps whose values are kept
    record_end_to_end: bool
    record_balancedness: bool
    record_window_max: bool  # keep the largest loss of every interval between recorded steps
    thresholds: np.ndarray  # (J,) losses whose last exceedance step is tracked, maybe empty
    dtype: str  # "float32" or "float64"
    jit_compile: bool
    bias: bool = False  # a bias on every layer (the end-to-end map is affine)
    bias_std: float = 0.0  # the biases' initial N(0, bias_std^2) draw (0: zeros)
    snapshot_steps: tuple = ()  # steps after which `last_above` is kept (ascending)

    @property
    def learning_rates(self):
        """(C,) per copy, seed-major."""
        return np.tile(self.grid, len(self.seeds))

    @property
    def copy_seeds(self):
        return np.repeat(np.asarray(self.seeds), self.grid.size)

    @property
    def copies(self):
        return self.grid.size * len(self.seeds)

    def needs_svd(self, d, k):
        return self.update == "end_to_end" and self.depth > 1 and min(d, k) > 1

    def config(self):
        """The arguments as JSON-ready values, for provenance."""
        return {
            "steps": self.steps,
            "depth": self.depth,
            "hidden_widths": list(self.hidden_widths),
            "update": self.update if self.optimizer is None else keras.optimizers.serialize(self.optimizer),
            "initializer": keras.initializers.serialize(self.initializer),
            "seeds": list(self.seeds),
            "learning_rates": self.grid.tolist(),
            "loss_p": self.p,
            "reduction": self.reduction,
            "weight_decay": self.weight_decay,
            "divergence_factor": self.divergence_factor,
            "dtype": self.dtype,
            "bias": self.bias,
            "bias_std": self.bias_std,
        }


def _as_2d(name, array, dtype):
    """`array` as a 2-D `dtype` array with at least one row and finite values in `dtype`."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1 and name == "y":
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"`{name}` must be 2-D with at least one row and column. Received: {name}.shape={array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    with np.errstate(over="ignore"):
        converted = array.astype(dtype)
    if not np.all(np.isfinite(converted)):
        raise ValueError(
            f"`{name}` has values that overflow {dtype} (largest |{name}| = {np.abs(array).max():.3g}); "
            "rescale the data or use dtype='float64'."
        )
    return converted


def _loss_power(loss):
    if isinstance(loss, LpLoss):
        return loss.p
    return check_real("loss", loss, minimum=1.0)


def _resolve_update(update):
    if isinstance(update, str) and update in UPDATES:
        return update, None
    try:
        optimizer = keras.optimizers.get(update)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`update` must be one of {list(UPDATES)}, a keras optimizer or its name. Received: update={update!r}"
        ) from error
    config = optimizer.get_config()
    for key in _UNSUPPORTED_OPTIMIZER_SETTINGS:
        if config.get(key):
            raise ValueError(
                f"`update` optimizer setting {key}={config[key]!r} is not supported by the "
                "sweep (it would couple the copies or be ignored); use `weight_decay=` of "
                "`sweep` for decay."
            )
    config["learning_rate"] = 1.0
    return "optimizer", optimizer.__class__.from_config(config)


def _check_record_steps(record_steps, steps):
    if record_steps is None:
        return np.arange(steps + 1)
    record = np.unique(np.asarray(record_steps, dtype=np.int64))
    if record.size == 0 or record[0] < 0 or record[-1] > steps:
        raise ValueError(
            f"`record_steps` must be non-empty and within [0, steps={steps}]. Received: record_steps={record_steps!r}"
        )
    return record


def _check_snapshot_steps(snapshot_steps, steps):
    """Distinct ascending steps from 0 to `steps`."""
    values = tuple(sorted({check_int("snapshot_steps", s, minimum=0) for s in snapshot_steps}))
    if values and values[-1] > steps:
        raise ValueError(f"`snapshot_steps` must be at most `steps` = {steps}. Received: snapshot_steps={list(values)}")
    return values


def _check_thresholds(thresholds):
    values = np.asarray([] if thresholds is None else thresholds, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError(f"`thresholds` must be finite losses. Received: thresholds={list(values)!r}")
    return values


def _check_grid(learning_rates):
    rates = np.asarray(list(learning_rates), dtype=np.float64).ravel()
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(
            "`learning_rates` must be a non-empty list of finite values > 0. "
            f"Received: learning_rates={list(learning_rates)!r}"
        )
    return rates


def available_memory():
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(spec, m, d, k):
    """Raise MemoryError naming the sizes when the sweep cannot fit in memory."""
    item = np.dtype(spec.dtype).itemsize
    copies, rows = spec.copies, spec.record_steps.size + 1
    sizes = {
        "data": (d * d + k * d) if spec.p == 2 else (2 * m * d + k * m),
        "per-step residuals (copies x outputs x rows, 4 buffers)": 0 if spec.p == 2 else 4 * copies * k * m,
        "weights (copies x parameters, 4 buffers)": 4
        * copies
        * sum(a * b for a, b in factor_shapes(d, k, spec.hidden_widths)),
        "records (recorded steps x copies)": rows
        * copies
        * (
            2
            + spec.record_window_max
            + (d * k if spec.record_end_to_end else 0)
            + (2 * spec.depth if spec.record_balancedness else 0)
        ),
        "tracked thresholds": copies * spec.thresholds.size,
    }
    needed = item * sum(sizes.values())
    available = available_memory()
    if available is not None and needed > available:
        parts = ", ".join(f"{name}: {item * n / 2**30:.2f} GiB" for name, n in sizes.items() if n)
        raise MemoryError(
            f"sweep needs about {needed / 2**30:.2f} GiB ({parts}; m={m} rows, d={d}, k={k}, {copies} copies, "
            f"{spec.dtype}) but only {available / 2**30:.2f} GiB are available: use fewer copies (learning rates "
            "x seeds), fewer record_steps or a smaller dataset."
        )


def _draw_dtype():
    """float64 for the initial draws, except on JAX with 64-bit floats off (there a float64
    draw arrives rounded to float32 anyway, with a warning)."""
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    return "float64"


def _initial_factors(spec, d, k):
    """(C, ...) float64 initial weights: the factors, or [W_e(0)] for the rule; copies with
    the same seed share them."""
    shapes = factor_shapes(d, k, spec.hidden_widths)
    per_seed = [
        [
            np.asarray(f, np.float64)
            for f in initializers.draw_factors(initializers.with_seed(spec.initializer, seed), shapes, _draw_dtype())
        ]
        for seed in spec.seeds
    ]
    if spec.update == "end_to_end":
        per_seed = [[product(fs)] for fs in per_seed]
    if spec.bias:  # after the factors, one bias per layer, drawn per seed after them
        for seed, fs in zip(spec.seeds, per_seed):
            draws = np.random.default_rng([seed, len(shapes)])
            fs += [spec.bias_std * draws.standard_normal(shape[1]) for shape in shapes]
    return [np.repeat(np.stack([fs[j] for fs in per_seed]), spec.grid.size, axis=0) for j in range(len(per_seed[0]))]


def _progress_callback(progress, steps):
    """(callback, bar or None) for `progress` = bool or a callable taking steps done."""
    if callable(progress):
        return progress, None
    if not progress:
        return None, None
    bar = Progress(steps + 1, description="sweep", unit="step")
    return bar.advance, bar


def sweep(
    x,
    y,
    learning_rates,
    steps,
    *,
    depth=1,
    hidden_widths=1,
    update="gd",
    initializer="near_zero",
    seeds=(0,),
    loss=2,
    reduction="mean",
    weight_decay=0.0,
    record_steps=None,
    record_end_to_end=False,
    record_balancedness=False,
    record_window_max=False,
    thresholds=None,
    snapshot_steps=(),
    divergence_factor=1e3,
    dtype="float32",
    chunk_size=2000,
    progress=False,
    jit_compile=True,
    bias=False,
    bias_std=0.0,
):
    """Train one copy per (seed, learning rate) full batch, in one compiled loop.

    Args:
        x: (m, d) inputs. y: (m,) or (m, k) targets.
        learning_rates: non-empty list of eta > 0.
        steps: number of updates; losses exist for steps 0..steps.
        depth, hidden_widths: the net (PAPER Sec. 1); for update="end_to_end" they
            define how W_e(0) is drawn (product of the initialized factors) and N of Eq. 10.
        update: "gd" (Eq. 4), "end_to_end" (Eq. 10) or a keras optimizer / name.
        initializer: for the factors, e.g. "near_zero", "identity",
            `tfovp.initializers.Balanced(...)`; re-seeded with each entry of `seeds`.
        seeds: ints; copies with one seed share their initialization.
        loss: p of the l_p loss (real >= 1) or an `LpLoss`.
        reduction: "mean" (PAPER convention) or "sum" over examples.
        weight_decay: lambda of Eqs. 4 and 10.
        record_steps: steps whose loss is kept (default every step).
        record_end_to_end: also keep W_e at those steps.
        record_balancedness: also keep the Eq. 7 residual of every factor pair.
        record_window_max: also keep, for every recorded step, the largest loss from it
            to the next recorded step, over every step (so that max_{s >= t} L(s) is
            exact at the recorded steps).
        thresholds: losses; for each, the last step whose loss exceeded it is tracked
            over every step (so that "stays below from step t on" is exact).
        snapshot_steps: steps (<= `steps`) after which the tracked last steps above the
            thresholds are also kept (`SweepResult.last_above_at`): one run of K steps then
            gives T(e) exactly for every shorter budget among them, as a run of that budget
            would (the trajectory is the same; a compiled call ends at each).
        divergence_factor: a copy diverges when its loss exceeds this multiple of its
            initial loss (None: only non-finite losses count).
        dtype: "float32" or "float64"; the data must be finite in it.
        chunk_size: steps per compiled call (progress granularity).
        progress: True for a progress bar, or a callable receiving the number of steps
            done after each chunk.
        jit_compile: compile with XLA (not applied to the SVD route, see above).
        bias: a bias on every layer, as `torch.nn.Linear` has (see above; GD and Keras
            optimizers only: the end-to-end rule has no bias).
        bias_std: the biases' initial N(0, bias_std^2) draw, per seed (0: zeros).

    Returns:
        `SweepResult`.

    Raises:
        ValueError: for an invalid argument (named in the message).
        MemoryError: when the data, copies and records cannot fit in memory (before
            anything is allocated).
    """
    started = time.perf_counter()
    dtype = check_float_dtype(
        "dtype", check_choice("dtype", keras.backend.standardize_dtype(dtype), ("float32", "float64"))
    )
    x, y = _as_2d("x", x, dtype), _as_2d("y", y, dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`x` and `y` must have the same number of rows. Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    steps = check_int("steps", steps, minimum=0)
    depth = check_int("depth", depth, minimum=1)
    seeds = tuple(check_int("seeds", s) for s in seeds)
    if not seeds:
        raise ValueError("`seeds` must be a non-empty list of ints. Received: seeds=[]")
    if divergence_factor is not None:
        check_real("divergence_factor", divergence_factor, minimum=1.0)
    update, optimizer = _resolve_update(update)
    if bias and update == "end_to_end":
        raise ValueError("`bias=True` needs update='gd' or a Keras optimizer: the end-to-end rule (Eq. 10) has no bias")
    spec = SweepSpec(
        p=_loss_power(loss),
        reduction=check_choice("reduction", reduction, REDUCTIONS),
        depth=depth,
        hidden_widths=tuple(hidden_widths_list(hidden_widths, depth)),
        update=update,
        optimizer=optimizer,
        initializer=initializers.get(initializer),
        seeds=seeds,
        grid=_check_grid(learning_rates),
        steps=steps,
        weight_decay=check_real("weight_decay", weight_decay, minimum=0.0),
        divergence_factor=divergence_factor,
        record_steps=_check_record_steps(record_steps, steps),
        record_end_to_end=bool(record_end_to_end),
        record_balancedness=bool(record_balancedness),
        record_window_max=bool(record_window_max),
        thresholds=_check_thresholds(thresholds),
        snapshot_steps=_check_snapshot_steps(snapshot_steps, steps),
        dtype=dtype,
        jit_compile=bool(jit_compile),
        bias=bool(bias),
        bias_std=check_real("bias_std", bias_std, minimum=0.0),
    )
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    _check_memory(spec, x.shape[0], x.shape[1], y.shape[1])
    program = _program()(spec, x, y, _initial_factors(spec, x.shape[1], y.shape[1]))
    callback, bar = _progress_callback(progress, steps)
    try:
        seconds_per_step = program.train(chunk_size, callback)
    finally:
        if bar is not None:
            bar.close()
    return SweepResult(
        learning_rates=spec.learning_rates,
        seeds=spec.copy_seeds,
        steps=spec.record_steps,
        elapsed=time.perf_counter() - started,
        seconds_per_step=seconds_per_step,
        config=spec.config(),
        **program.result_fields(),
    )


def _program():
    """The step loop of the backend Keras runs on: TensorFlow's (the reference) or JAX's."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from tfovp._sweep_tf import SweepProgram

        return SweepProgram
    if backend == "jax":
        from tfovp._sweep_jax import JaxSweepProgram

        return JaxSweepProgram
    raise ValueError(
        f"tfovp.sweep runs on the TensorFlow and JAX backends (one compiled loop); Keras runs on {backend!r}: "
        f"set KERAS_BACKEND=tensorflow or jax. Received: backend={backend!r}"
    )


def _affine_product(weights, depth):
    """[W_e; b_e] of NumPy factors and biases (the product of the augmented factors)."""
    if keras.backend.backend() == "tensorflow":  # the reference's own arithmetic
        import tensorflow as tf

        from tfovp._sweep_tf import affine_product

        return affine_product([tf.constant(w) for w in weights], depth).numpy()
    from tfovp._sweep_jax import affine_product

    return np.asarray(affine_product([np.asarray(w) for w in weights], depth))
