"""Training as the tutorial does it (PAPER Sec. 5): data in [-0.5, 0.5], the first 5,000
training images for validation, batches of 64 in order, one compiled step per batch,
evaluation every 100 steps, the test error at the end; per-step history, optional CSV
and TensorBoard. `mnist_tutorial.convolutional.train` is the entry point."""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from mnist_tutorial.convolutional import (
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
    write_history_csv,
)
from mnist_tutorial.model import TF1Momentum, TutorialDecay, build_model, l2_tensors


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
    """The model, optimizer and compiled train/eval steps of one run."""

    def __init__(self, config, train_size, strategy=None):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = build_model(
                config.overparameterize, config.overparam_init_std, config.seed, config.dropout_rate
            )
            self.schedule = TutorialDecay(config.base_lr, BATCH_SIZE, train_size)
            self.optimizer = TF1Momentum(self.schedule, 0.9)
            self.optimizer.build(self.model.trainable_variables)
        self.train_step = tf.function(self._train_step)
        self.predict_step = tf.function(lambda x: tf.nn.softmax(tf.cast(self.model(x, training=False), tf.float32)))

    def loss(self, logits, labels, global_batch):
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
        data = tf.reduce_sum(per_example) / global_batch
        l2 = tf.add_n([tf.nn.l2_loss(tf.cast(t, tf.float32)) for t in l2_tensors(self.model, self.config.l2_on)])
        return data + 5e-4 * l2 / self.strategy.num_replicas_in_sync, per_example

    def _replica_step(self, images, labels):
        with tf.GradientTape() as tape:
            logits = self.model(images, training=True)
            loss, _ = self.loss(logits, labels, BATCH_SIZE)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply(grads, self.model.trainable_variables)
        wrong = tf.reduce_sum(tf.cast(tf.not_equal(tf.argmax(logits, 1), labels), tf.float32))
        return loss, wrong

    def _train_step(self, images, labels):
        if self.strategy.num_replicas_in_sync == 1:
            return self._replica_step(images, labels)
        per = BATCH_SIZE // self.strategy.num_replicas_in_sync
        shard = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: (
                images[ctx.replica_id_in_sync_group * per : (ctx.replica_id_in_sync_group + 1) * per],
                labels[ctx.replica_id_in_sync_group * per : (ctx.replica_id_in_sync_group + 1) * per],
            )
        )
        loss, wrong = self.strategy.run(lambda pair: self._replica_step(*pair), args=(shard,))
        reduce = tf.distribute.ReduceOp.SUM
        return self.strategy.reduce(reduce, loss, axis=None), self.strategy.reduce(reduce, wrong, axis=None)

    def error_rate(self, images, labels):
        """Percent of wrong predictions, evaluated in batches of EVAL_BATCH_SIZE."""
        wrong = 0
        for begin in range(0, len(images), EVAL_BATCH_SIZE):
            probabilities = self.predict_step(tf.constant(images[begin : begin + EVAL_BATCH_SIZE]))
            wrong += int(np.sum(np.argmax(probabilities, 1) != labels[begin : begin + EVAL_BATCH_SIZE]))
        return 100.0 * wrong / len(images)


def make_strategy(name):
    """The default strategy, or MirroredStrategy over the visible GPUs (else the CPU)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"`strategy` must be 'default' or 'mirrored'. Received: strategy={name!r}")


def train(config, progress=None):
    """Train as the tutorial does; returns a TrainingResult. `progress(steps)` is called
    every EVAL_FREQUENCY steps and at the end with the steps done since its last call."""
    if config.use_fp16:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = load_data(config)
    train_size = len(train_x)
    num_steps = planned_steps(config)
    trainer = Trainer(config, train_size, make_strategy(config.strategy))
    monitor = _tensorboard(config, trainer.model)
    history = {"step": [], "minibatch_loss": [], "learning_rate": [], "minibatch_error": [], "validation_error": []}
    started = start = time.time()
    diverged_at, reported = None, 0
    for step in range(num_steps):
        offset = batch_offset(step, train_size)
        loss, wrong = trainer.train_step(
            tf.constant(train_x[offset : offset + BATCH_SIZE]), tf.constant(train_y[offset : offset + BATCH_SIZE])
        )
        rate = float(trainer.schedule(step))
        history["step"].append(step)
        history["minibatch_loss"].append(float(loss))
        history["learning_rate"].append(rate)
        history["minibatch_error"].append(100.0 * float(wrong) / BATCH_SIZE)
        history["validation_error"].append(None)
        if not np.isfinite(float(loss)) or float(loss) > DIVERGENCE_FACTOR * history["minibatch_loss"][0]:
            diverged_at = step
            if not config.quiet:
                print(
                    f"Step {step}: the minibatch loss is {float(loss):.4g} (first step: "
                    f"{history['minibatch_loss'][0]:.4g}); training diverged and stops."
                )
            break
        if step % EVAL_FREQUENCY == 0:
            elapsed = time.time() - start
            start = time.time()
            history["validation_error"][-1] = trainer.error_rate(val_x, val_y)
            if not config.quiet:
                print(
                    f"Step {step} (epoch {step * BATCH_SIZE / train_size:.2f}), "
                    f"{1000 * elapsed / EVAL_FREQUENCY:.1f} ms"
                )
                print(f"Minibatch loss: {float(loss):.3f}, learning rate: {rate:.6f}")
                print(f"Minibatch error: {history['minibatch_error'][-1]:.1f}%")
                print(f"Validation error: {history['validation_error'][-1]:.1f}%", flush=True)
            if monitor is not None:
                monitor(step, history)
            if progress is not None:
                progress(step + 1 - reported)
                reported = step + 1
    seconds = time.time() - started
    test_error = trainer.error_rate(test_x, test_y) if diverged_at is None else float("nan")
    if progress is not None:
        progress(num_steps - reported)
    if not config.quiet:
        print(f"Test error: {test_error:.1f}%")
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


def _tensorboard(config, model):
    if not config.tensorboard:
        return None
    from tfovp.callbacks import EndToEndMonitor

    writer = tf.summary.create_file_writer(os.path.join(config.tensorboard, "train"))
    weights = EndToEndMonitor(config.tensorboard, every_n_steps=EVAL_FREQUENCY)
    weights.set_model(model)
    weights.on_train_begin()

    def log(step, history):
        with writer.as_default(step=step):
            for key in ("minibatch_loss", "learning_rate", "minibatch_error", "validation_error"):
                tf.summary.scalar(key, history[key][-1])
        writer.flush()
        weights.write(step)

    return log
