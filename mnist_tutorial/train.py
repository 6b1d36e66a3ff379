"""Training as the tutorial does it (PAPER Sec. 5): data in [-0.5, 0.5], the first 5,000
training images for validation, batches of 64 in order, one compiled step per batch,
evaluation every 100 steps, the test error at the end; per-step history, optional CSV
and TensorBoard. `train_and_evaluate` is the entry point.

The step runs on the Keras backend: TensorFlow (`Trainer`, the reference: a
`tf.function`, with `MirroredStrategy` and mixed precision) or JAX
(`mnist_tutorial.train_jax.JaxTrainer`: one `jax.jit` step; one device, float32).
TensorBoard output is written with `tf.summary` on either: it needs TensorFlow installed."""

import dataclasses
import json
import os
import pathlib
import sys
import time
import zipfile

import keras
import numpy as np

from mnist_tutorial.config import (
    BATCH_SIZE,
    DIVERGENCE_FACTOR,
    EVAL_BATCH_SIZE,
    EVAL_FREQUENCY,
    IMAGE_SIZE,
    NUM_CHANNELS,
    PIXEL_DEPTH,
    VALIDATION_SIZE,
    TrainingResult,
    planned_steps,
)
from mnist_tutorial.model import l2_tensors
from mnist_tutorial.parts import DENSE_LAYERS, build_training, error_rate
from tfovp.end_to_end import precondition
from tfovp.files import atomic_writer
from tfovp.layers import FactoredDense

# Per-step columns of the history (the kernel norms of `kernel_norms` follow, every
# EVAL_FREQUENCY steps like the validation error); minibatch_loss, the loss the tutorial
# prints, is cross_entropy + l2_term.
HISTORY = ("step", "minibatch_loss", "cross_entropy", "l2_term", "learning_rate", "minibatch_error", "validation_error")


def fake_data(num_images):
    """The tutorial's --self_test data: image i is all (i % 2) - 0.5, label i % 2."""
    labels = np.arange(num_images) % 2
    data = np.broadcast_to(
        (labels - 0.5).astype(np.float32)[:, None, None, None], (num_images, IMAGE_SIZE, IMAGE_SIZE, NUM_CHANNELS)
    ).copy()
    return data, labels.astype(np.int64)


def load_data(config):
    """(train, validation, test) pairs of scaled float32 images and int64 labels."""
    if config.self_test:
        return fake_data(256), fake_data(EVAL_BATCH_SIZE), fake_data(EVAL_BATCH_SIZE)
    from tfovp.datasets import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir=config.data_dir)

    def scale(x):
        return ((x.astype(np.float32) - PIXEL_DEPTH / 2.0) / PIXEL_DEPTH)[..., None]

    x_train, x_test = scale(x_train), scale(x_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    return (
        (x_train[VALIDATION_SIZE:], y_train[VALIDATION_SIZE:]),
        (x_train[:VALIDATION_SIZE], y_train[:VALIDATION_SIZE]),
        (x_test, y_test),
    )


def batch_offset(step, train_size, batch_size=BATCH_SIZE):
    """The tutorial's in-order batches: (step * batch_size) mod (train_size - batch_size)."""
    return (step * batch_size) % (train_size - batch_size)


class Trainer:
    """The model, optimizer and compiled train/eval steps of one run (TensorFlow)."""

    def __init__(self, config, train_size, strategy=None):
        import tensorflow as tf

        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model, self.schedule, self.optimizer, self.preconditioned = build_training(config, train_size)
        self.train_step = tf.function(self._train_step)
        self.predict_step = tf.function(lambda x: tf.nn.softmax(tf.cast(self.model(x, training=False), tf.float32)))

    def step(self, images, labels):
        """(printed loss, wrong predictions, cross-entropy, L2 term) of one update on a
        batch of NumPy images and labels."""
        import tensorflow as tf

        return self.train_step(tf.constant(images), tf.constant(labels))

    def loss(self, logits, labels, global_batch):
        """(printed loss, mean cross-entropy, L2 term, per-example cross-entropy): the
        tutorial's loss is the cross-entropy plus 5e-4 * sum of l2_loss over `l2_tensors`."""
        import tensorflow as tf

        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
        data = tf.reduce_sum(per_example) / global_batch
        l2 = tf.add_n([tf.nn.l2_loss(tf.cast(t, tf.float32)) for t in l2_tensors(self.model, self.config.l2_on)])
        l2_term = 5e-4 * l2 / self.strategy.num_replicas_in_sync
        return data + l2_term, data, l2_term, per_example

    def _replica_step(self, images, labels):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            loss, data, l2_term, _ = self.loss(logits, labels, BATCH_SIZE)
        grads = tape.gradient(loss, self.model.trainable_variables)
        grads = [
            _precondition(v, g) if p else g
            for v, g, p in zip(self.model.trainable_variables, grads, self.preconditioned)
        ]
        self.optimizer.apply(grads, self.model.trainable_variables)
        wrong = tf.reduce_sum(tf.cast(tf.not_equal(tf.argmax(logits, 1), labels), tf.float32))
        return loss, wrong, data, l2_term

    def _train_step(self, images, labels):
        """(printed loss, wrong predictions, cross-entropy, L2 term) of one batch."""
        import tensorflow as tf

        if self.strategy.num_replicas_in_sync == 1:
            return self._replica_step(images, labels)
        per = BATCH_SIZE // self.strategy.num_replicas_in_sync
        shard = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: (
                images[ctx.replica_id_in_sync_group * per : (ctx.replica_id_in_sync_group + 1) * per],
                labels[ctx.replica_id_in_sync_group * per : (ctx.replica_id_in_sync_group + 1) * per],
            )
        )
        values = self.strategy.run(lambda pair: self._replica_step(*pair), args=(shard,))
        return tuple(self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values)

    def error_rate(self, images, labels):
        """Percent of wrong predictions, evaluated in batches of EVAL_BATCH_SIZE."""
        import tensorflow as tf

        return error_rate(lambda batch: self.predict_step(tf.constant(batch)), images, labels)


def _precondition(kernel, gradient):
    """P_W(G) of Eq. 10 with N = 2, through the small Gram matrix, in float64."""
    import tensorflow as tf

    direction = precondition(tf.cast(kernel, tf.float64), tf.cast(gradient, tf.float64), 2, method="gram")
    return tf.cast(direction, gradient.dtype)


def kernel_norms(model):
    """Frobenius and spectral norm of every dense kernel (the product kernel of a factored
    layer, and each of its factors): {"fc1_frobenius": ..., "fc1_factor0_spectral": ...}."""
    out = {}
    for name in DENSE_LAYERS:
        layer = model.get_layer(name)
        matrices = [("", layer.kernel)]
        if isinstance(layer, FactoredDense):
            matrices += [(f"_factor{j}", f) for j, f in enumerate(layer.factors)]
        for suffix, matrix in matrices:
            w = np.asarray(matrix, dtype=np.float64)
            gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T  # the smaller Gram matrix
            out[f"{name}{suffix}_frobenius"] = float(np.sqrt(np.trace(gram)))
            out[f"{name}{suffix}_spectral"] = float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0)))
    return out


class Checkpoint:
    """The state of a run in one .npz file, written atomically every `every` steps: every
    variable of the model (the dropout seed included) and of the optimizer (its step and
    momentum), the history, the seconds spent and the settings that identify the run.
    A file that cannot be read is moved aside (`.corrupt`), and one of a run with other
    settings is kept aside (`.other`), each with one line, and the run starts over."""

    def __init__(self, path, trainer, fingerprint, every, say=print):
        self.path, self.trainer, self.fingerprint, self.every = path, trainer, fingerprint, every
        self.say = say

    def _variables(self):
        return list(self.trainer.model.variables) + list(self.trainer.optimizer.variables)

    def save(self, next_step, history, seconds):
        arrays = {f"v{i}": np.asarray(v) for i, v in enumerate(self._variables())}
        state = {"fingerprint": self.fingerprint, "next_step": next_step, "history": history, "seconds": seconds}
        with atomic_writer(self.path, "wb") as handle:
            np.savez(handle, state=np.array(json.dumps(state)), **arrays)

    def restore(self):
        """(next step, history, seconds) of the saved run, or None (no file, a corrupt one
        or one of other settings: set aside, see the class docstring)."""
        path = pathlib.Path(self.path) if self.path else None
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as saved:
                state = json.loads(str(saved["state"]))
                if state["fingerprint"] != self.fingerprint:
                    self._set_aside(".other", "holds a run with other settings")
                    return None
                arrays = [saved[f"v{i}"] for i in range(len(self._variables()))]
                restored = state["next_step"], state["history"], state["seconds"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as error:
            self._set_aside(".corrupt", f"cannot be read ({type(error).__name__}: {str(error).splitlines()[0]})")
            return None
        for variable, value in zip(self._variables(), arrays):
            variable.assign(value)
        return restored

    def saved_step(self):
        """The step the checkpoint file would resume at, or None (no readable file of this run)."""
        try:
            with np.load(self.path) as saved:
                state = json.loads(str(saved["state"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError):
            return None
        return state["next_step"] if state.get("fingerprint") == self.fingerprint else None

    def _set_aside(self, suffix, why):
        path = pathlib.Path(self.path)
        aside = path.with_name(path.name + suffix)
        os.replace(path, aside)
        self.say(f"checkpoint {path} {why}; kept as {aside}; starting from step 0")


def checkpoint_of(config, trainer=None):
    """The Checkpoint of `config` (None without --checkpoint); `trainer` may be None to
    ask only which step its file holds."""
    if not config.checkpoint:
        return None
    return Checkpoint(
        config.checkpoint,
        trainer,
        _fingerprint(config),
        config.checkpoint_every,
        lambda text: print(text, file=sys.stderr),
    )


def _fingerprint(config):
    """What identifies a run's trajectory (not where its files go)."""
    ignored = {"data_dir", "tensorboard", "out", "quiet", "checkpoint", "checkpoint_every"}
    return json.dumps({k: v for k, v in dataclasses.asdict(config).items() if k not in ignored}, sort_keys=True)


def make_strategy(name):
    """The default strategy, or MirroredStrategy over the visible GPUs (else the CPU)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"`strategy` must be 'default' or 'mirrored'. Received: strategy={name!r}")


def train_and_evaluate(config, progress=None):
    """Train as the tutorial does; returns a TrainingResult. `progress(steps)` is called
    every EVAL_FREQUENCY steps and at the end with the steps done since its last call.
    With `config.checkpoint`, the run is saved every `config.checkpoint_every` steps and
    resumed from there: the result is the same as without the interruption."""
    if config.use_fp16:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = load_data(config)
    train_size = len(train_x)
    num_steps = planned_steps(config)
    trainer = make_trainer(config, train_size)
    checkpoint = checkpoint_of(config, trainer)
    restored = checkpoint.restore() if checkpoint else None
    first, history, spent = restored or (0, {key: [] for key in (*HISTORY, *kernel_norms(trainer.model))}, 0.0)
    if first and not config.quiet:
        print(f"Resumed at step {first} from {config.checkpoint}")
    monitor = _tensorboard(config, trainer.model)
    started = start = time.time()
    diverged_at, reported = None, 0
    for step in range(first, num_steps):
        offset = batch_offset(step, train_size)
        _train_step(
            trainer, history, step, train_x[offset : offset + BATCH_SIZE], train_y[offset : offset + BATCH_SIZE]
        )
        if _diverged(history, config.quiet):
            diverged_at = step
            break
        if step % EVAL_FREQUENCY == 0:
            elapsed, start = time.time() - start, time.time()  # the tutorial times the steps, not the evaluation
            _evaluate(trainer, history, (val_x, val_y))
            if not config.quiet:
                _print_evaluation(history, train_size, elapsed)
            if monitor is not None:
                monitor(step, history)
            if progress is not None:
                progress(step + 1 - first - reported)
                reported = step + 1 - first
        if checkpoint and (step + 1) % config.checkpoint_every == 0 and step + 1 < num_steps:
            checkpoint.save(step + 1, history, spent + time.time() - started)
    seconds = spent + time.time() - started
    test_error = trainer.error_rate(test_x, test_y) if diverged_at is None else float("nan")
    _log_outcome(monitor, history, test_error, diverged_at, num_steps)
    if progress is not None:
        progress(num_steps - first - reported)
    if not config.quiet:
        print(
            f"Test error: {test_error:.1f}%"
            if diverged_at is None
            else f"Diverged at step {diverged_at}: no test error (see --base-lr)"
        )
    if config.out:
        write_history_csv(config.out, history)
    return TrainingResult(
        history=history,
        test_error=test_error,
        steps=num_steps,
        diverged_at=diverged_at,
        seconds=seconds,
        parameters=trainer.model.count_params(),
        model=trainer.model,
    )


def make_trainer(config, train_size):
    """The trainer of the Keras backend: `Trainer` on TensorFlow, `JaxTrainer` on JAX."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return Trainer(config, train_size, make_strategy(config.strategy))
    if backend == "jax":
        from mnist_tutorial.train_jax import JaxTrainer

        return JaxTrainer(config, train_size)
    raise ValueError(f"the tutorial trains on the TensorFlow or JAX backend. Received: backend={backend!r}")


def write_history_csv(path, history):
    """Every step's values as CSV (written atomically)."""
    import pandas as pd

    with atomic_writer(path, "w", newline="") as handle:
        pd.DataFrame(history).to_csv(handle, index=False, float_format="%.6g")


def _train_step(trainer, history, step, images, labels):
    """One update on a batch; its row of the history."""
    loss, wrong, data_term, l2_term = (float(v) for v in trainer.step(images, labels))
    _append(
        history,
        step=step,
        minibatch_loss=loss,
        cross_entropy=data_term,
        l2_term=l2_term,
        learning_rate=float(trainer.schedule(step)),
        minibatch_error=100.0 * wrong / BATCH_SIZE,
    )


def _diverged(history, quiet):
    """Whether the last minibatch loss is not finite or above DIVERGENCE_FACTOR x the first."""
    loss, first = history["minibatch_loss"][-1], history["minibatch_loss"][0]
    if np.isfinite(loss) and loss <= DIVERGENCE_FACTOR * first:
        return False
    if not quiet:
        print(
            f"Step {history['step'][-1]}: the minibatch loss is {loss:.4g} (first step: {first:.4g}); "
            "training diverged and stops."
        )
    return True


def _evaluate(trainer, history, validation):
    """The validation error and the kernel norms, into the last row of the history."""
    history["validation_error"][-1] = trainer.error_rate(*validation)
    for key, value in kernel_norms(trainer.model).items():
        history[key][-1] = value


def _print_evaluation(history, train_size, elapsed):
    """The tutorial's printout every EVAL_FREQUENCY steps."""
    step = history["step"][-1]
    print(f"Step {step} (epoch {step * BATCH_SIZE / train_size:.2f}), {1000 * elapsed / EVAL_FREQUENCY:.1f} ms")
    print(f"Minibatch loss: {history['minibatch_loss'][-1]:.3f}, learning rate: {history['learning_rate'][-1]:.6f}")
    print(f"Minibatch error: {history['minibatch_error'][-1]:.1f}%")
    print(f"Validation error: {history['validation_error'][-1]:.1f}%", flush=True)


def _append(history, **values):
    """One step's row: the given values, None in every other column (evaluated later or
    only every EVAL_FREQUENCY steps)."""
    for key, column in history.items():
        column.append(values.get(key))


TENSORBOARD_HPARAMS = ("base_lr", "overparameterize", "factor_convs", "preconditioned", "l2_on",
                       "overparam_init_std", "seed", "epochs", "steps")  # fmt: skip


def _tensorboard(config, model):
    """A function writing the history's last row to TensorBoard (`<dir>/train`), with the
    run's settings as HParams; the factored layers' diagnostics under `<dir>/end_to_end`
    only when the model has factored layers (no empty run)."""
    if not config.tensorboard:
        return None
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    from tfovp.callbacks import EndToEndMonitor, factored_layers

    writer = tf.summary.create_file_writer(os.path.join(config.tensorboard, "train"))
    settings = {k: getattr(config, k) for k in TENSORBOARD_HPARAMS}
    settings["steps"] = planned_steps(config)  # the budget, also when given in epochs
    with writer.as_default():
        hp.hparams(settings, trial_id=config.tensorboard)
    weights = None
    if factored_layers(model):
        weights = EndToEndMonitor(config.tensorboard, every_n_steps=EVAL_FREQUENCY)
        weights.set_model(model)
        weights.on_train_begin()

    def log(step, history):
        with writer.as_default(step=step):
            for key, column in history.items():
                if key != "step" and column[-1] is not None:
                    tf.summary.scalar(key, column[-1])
        writer.flush()
        if weights is not None:
            weights.write(step)

    log.writer = writer
    return log


def _log_outcome(monitor, history, test_error, diverged_at, step):
    """The run's metrics for the HParams dashboard: the printed loss and its two parts
    (mean of the last EVAL_FREQUENCY steps), the test error, and whether (and where) it
    diverged; a metric that does not exist for the run is left out."""
    if monitor is None:
        return
    import tensorflow as tf

    with monitor.writer.as_default(step=step):
        tf.summary.scalar("diverged", int(diverged_at is not None))
        if diverged_at is not None:
            tf.summary.scalar("diverged_at", diverged_at)
        else:
            for key in ("minibatch_loss", "cross_entropy", "l2_term"):
                tail = [v for v in history[key][-EVAL_FREQUENCY:] if v is not None]
                tf.summary.scalar(f"final_{key}", float(np.mean(tail)))
            tf.summary.scalar("test_error", test_error)
    monitor.writer.flush()
