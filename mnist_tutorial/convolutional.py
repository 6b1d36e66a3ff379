"""TensorFlow's classic MNIST convolutional tutorial, ported to TF2/Keras.

Title: LeNet-5-like convnet on MNIST (tensorflow/models tutorials/image/mnist/convolutional.py)
Description: the tutorial's model and training, setting for setting (PAPER Sec. 5), with
the two dense layers optionally overparameterized as in Figure 5 (right) of Arora, Cohen
& Hazan (2018): 3136x512 -> 3136x512 . 512x512 and 512x10 -> 512x10 . 10x10.

    python -m mnist_tutorial.convolutional [--overparameterize] [--self_test] [--epochs 10]

Setup: inputs scaled to [-0.5, 0.5]; conv 5x5x32 SAME + bias + ReLU; max-pool 2x2/2
SAME; conv 5x5x64 SAME + bias + ReLU; max-pool; flatten (3136); fc1 3136x512 + bias +
ReLU; dropout 0.5 (training only); fc2 512x10 + bias. Loss: mean softmax cross-entropy
+ 5e-4 * (l2_loss of fc1/fc2 kernels and biases), l2_loss(t) = sum(t^2)/2. Weights
truncated normal, std 0.1, seeded from the tutorial's 66478; biases conv1 0, others
0.1. Momentum 0.9 with TF1 semantics (accum = 0.9 accum + g; w -= lr accum); learning
rate 0.01 * 0.95^floor(step * 64 / 55000). Batch 64 in order, offset = (step * 64) mod
(55000 - 64); the first 5,000 training images are the validation set. Every 100 steps
it prints the minibatch loss, learning rate, minibatch and validation error.
"""

import argparse
import dataclasses
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfovp.layers import FactoredDense

IMAGE_SIZE, NUM_CHANNELS, PIXEL_DEPTH, NUM_LABELS = 28, 1, 255, 10
VALIDATION_SIZE, SEED, BATCH_SIZE, EVAL_BATCH_SIZE, EVAL_FREQUENCY = 5000, 66478, 64, 64, 100
DIVERGENCE_FACTOR = 1000  # a minibatch loss above this multiple of the first one (or not finite) = diverged


@dataclasses.dataclass
class Config:
    overparameterize: bool = False  # factor fc1 and fc2 (PAPER Fig. 5 right)
    l2_on: str = "product"  # L2 term on the product kernels ("product") or on every factor ("factors")
    overparam_init_std: float = 0.1  # std of the new factors (the tutorial's 0.1)
    base_lr: float = 0.01  # the tutorial's base learning rate
    epochs: float = 10.0  # the tutorial's 10 epochs
    steps: int | None = None  # stop after this many steps (overrides epochs)
    self_test: bool = False  # fake data, must reach 0 % test error
    use_fp16: bool = False  # mixed precision
    seed: int = SEED  # the tutorial's graph seed
    data_dir: str | None = None  # MNIST IDX files (else TFOVP_DATA_DIR, cache, download)
    tensorboard: str | None = None  # TensorBoard log dir
    out: str | None = None  # CSV of every step
    strategy: str = "default"  # "default" or "mirrored" (data-parallel over visible devices)
    dropout_rate: float = 0.5  # the tutorial's dropout
    verbose: bool = True  # print every EVAL_FREQUENCY steps


def _init(seed, index, stddev=0.1):
    return keras.initializers.TruncatedNormal(stddev=stddev, seed=seed * 100 + index)


def build_model(overparameterize=False, overparam_init_std=0.1, seed=SEED, dropout_rate=0.5, l2=None):
    """The tutorial's convnet as a Keras model (logits out); the dense layers `fc1`, `fc2`
    become `FactoredDense` (depth 2, hidden width = units) when `overparameterize`.
    `l2`: attach the tutorial's L2 term as Keras regularizers (kernel, i.e. the product,
    and bias of fc1/fc2), for training with plain `fit`; the port adds it itself."""
    regularizer = {} if l2 is None else {"kernel_regularizer": keras.regularizers.L2(l2 / 2),
                                         "bias_regularizer": keras.regularizers.L2(l2 / 2)}

    def dense(units, name, index, activation=None):
        if not overparameterize:
            return keras.layers.Dense(units, activation=activation, name=name, kernel_initializer=_init(seed, index),
                                      bias_initializer=keras.initializers.Constant(0.1), **regularizer)
        return FactoredDense(units, depth=2, hidden_widths=units, activation=activation, name=name,
                             kernel_initializer=[_init(seed, index), _init(seed, index + 10, overparam_init_std)],
                             bias_initializer=keras.initializers.Constant(0.1), **regularizer)

    return keras.Sequential([
        keras.Input((IMAGE_SIZE, IMAGE_SIZE, NUM_CHANNELS)),
        keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1",
                            kernel_initializer=_init(seed, 1), bias_initializer="zeros"),
        keras.layers.MaxPooling2D(2, 2, padding="same", name="pool1"),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2",
                            kernel_initializer=_init(seed, 2), bias_initializer=keras.initializers.Constant(0.1)),
        keras.layers.MaxPooling2D(2, 2, padding="same", name="pool2"),
        keras.layers.Flatten(name="flatten"),
        dense(512, "fc1", 3, activation="relu"),
        keras.layers.Dropout(dropout_rate, seed=seed, name="dropout"),
        dense(NUM_LABELS, "fc2", 4),
    ], name="overparameterized_convnet" if overparameterize else "convnet")


def l2_tensors(model, l2_on="product"):
    """What the 5e-4 L2 term covers: fc1/fc2 kernels (product or factors) and biases."""
    if l2_on not in ("product", "factors"):
        raise ValueError(f"`l2_on` must be 'product' or 'factors'. Received: l2_on={l2_on!r}")
    tensors = []
    for name in ("fc1", "fc2"):
        layer = model.get_layer(name)
        if isinstance(layer, FactoredDense) and l2_on == "factors":
            tensors += list(layer.factors)
        else:
            tensors.append(layer.kernel)
        tensors.append(layer.bias)
    return tensors


@keras.saving.register_keras_serializable(package="mnist_tutorial")
class TutorialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """base * 0.95^floor(step * batch_size / train_size): tf.train.exponential_decay with
    staircase=True on the tutorial's global step `batch * BATCH_SIZE`."""

    def __init__(self, base=0.01, batch_size=BATCH_SIZE, train_size=60000 - VALIDATION_SIZE, rate=0.95):
        self.base, self.batch_size, self.train_size, self.rate = base, batch_size, train_size, rate

    def __call__(self, step):
        epochs = tf.floor(tf.cast(step, tf.float32) * self.batch_size / self.train_size)
        return self.base * tf.pow(self.rate, epochs)

    def get_config(self):
        return {"base": self.base, "batch_size": self.batch_size, "train_size": self.train_size, "rate": self.rate}


@keras.saving.register_keras_serializable(package="mnist_tutorial")
class TF1Momentum(keras.optimizers.Optimizer):
    """tf.train.MomentumOptimizer: accum <- momentum * accum + g; w <- w - lr * accum
    (Keras' SGD puts lr inside the accumulator, which differs when lr decays)."""

    def __init__(self, learning_rate=0.01, momentum=0.9, name="tf1_momentum", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = momentum

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.accumulators = [self.add_variable_from_reference(v, "accumulator") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        accum = self.accumulators[self._get_variable_index(variable)]
        gradient = tf.cast(gradient, variable.dtype)
        self.assign(accum, self.momentum * accum + gradient)
        self.assign_sub(variable, tf.cast(learning_rate, variable.dtype) * accum)

    def get_config(self):
        config = super().get_config()
        config["momentum"] = self.momentum
        return config


def fake_data(num_images):
    """The tutorial's --self_test data: image i is all (i % 2) - 0.5, label i % 2."""
    labels = np.arange(num_images) % 2
    data = np.broadcast_to((labels - 0.5).astype(np.float32)[:, None, None, None],
                           (num_images, IMAGE_SIZE, IMAGE_SIZE, NUM_CHANNELS)).copy()
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
    return ((x_train[VALIDATION_SIZE:], y_train[VALIDATION_SIZE:]),
            (x_train[:VALIDATION_SIZE], y_train[:VALIDATION_SIZE]), (x_test, y_test))


def batch_offset(step, train_size, batch_size=BATCH_SIZE):
    """The tutorial's in-order batches: (step * batch_size) mod (train_size - batch_size)."""
    return (step * batch_size) % (train_size - batch_size)


class Trainer:
    """The model, optimizer and compiled train/eval steps of one run."""

    def __init__(self, config, train_size, strategy=None):
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = build_model(config.overparameterize, config.overparam_init_std, config.seed,
                                     config.dropout_rate)
            self.schedule = TutorialDecay(config.base_lr, BATCH_SIZE, train_size)
            self.optimizer = TF1Momentum(self.schedule, 0.9)
            self.optimizer.build(self.model.trainable_variables)
        self.regularized = l2_tensors_fn(config.l2_on)
        self.train_step = tf.function(self._train_step)
        self.predict_step = tf.function(lambda x: tf.nn.softmax(tf.cast(self.model(x, training=False), tf.float32)))

    def loss(self, logits, labels, global_batch):
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
        data = tf.reduce_sum(per_example) / global_batch
        l2 = tf.add_n([tf.nn.l2_loss(tf.cast(t, tf.float32)) for t in self.regularized(self.model)])
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
            lambda ctx: (images[ctx.replica_id_in_sync_group * per:(ctx.replica_id_in_sync_group + 1) * per],
                         labels[ctx.replica_id_in_sync_group * per:(ctx.replica_id_in_sync_group + 1) * per]))
        loss, wrong = self.strategy.run(lambda pair: self._replica_step(*pair), args=(shard,))
        reduce = tf.distribute.ReduceOp.SUM
        return self.strategy.reduce(reduce, loss, axis=None), self.strategy.reduce(reduce, wrong, axis=None)

    def error_rate(self, images, labels):
        """Percent of wrong predictions, evaluated in batches of EVAL_BATCH_SIZE."""
        wrong = 0
        for begin in range(0, len(images), EVAL_BATCH_SIZE):
            probabilities = self.predict_step(tf.constant(images[begin:begin + EVAL_BATCH_SIZE]))
            wrong += int(np.sum(np.argmax(probabilities, 1) != labels[begin:begin + EVAL_BATCH_SIZE]))
        return 100.0 * wrong / len(images)


def l2_tensors_fn(l2_on):
    l2_tensors(build_model(), l2_on)  # validates l2_on early
    return lambda model: l2_tensors(model, l2_on)


def make_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"`strategy` must be 'default' or 'mirrored'. Received: strategy={name!r}")


def train(config):
    """Train as the tutorial does; returns a dict with the per-step history and errors."""
    if config.use_fp16:
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(config.seed)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = load_data(config)
    train_size = len(train_x)
    epochs = 1.0 if config.self_test and config.steps is None else config.epochs
    num_steps = config.steps if config.steps is not None else int(epochs * train_size) // BATCH_SIZE
    trainer = Trainer(config, train_size, make_strategy(config.strategy))
    monitor = _tensorboard(config, trainer.model)
    history = {"step": [], "minibatch_loss": [], "learning_rate": [], "minibatch_error": [], "validation_error": []}
    started = start = time.time()
    diverged_at = None
    for step in range(num_steps):
        offset = batch_offset(step, train_size)
        loss, wrong = trainer.train_step(tf.constant(train_x[offset:offset + BATCH_SIZE]),
                                         tf.constant(train_y[offset:offset + BATCH_SIZE]))
        rate = float(trainer.schedule(step))
        history["step"].append(step)
        history["minibatch_loss"].append(float(loss))
        history["learning_rate"].append(rate)
        history["minibatch_error"].append(100.0 * float(wrong) / BATCH_SIZE)
        history["validation_error"].append(None)
        if not np.isfinite(float(loss)) or float(loss) > DIVERGENCE_FACTOR * history["minibatch_loss"][0]:
            diverged_at = step
            if config.verbose:
                print(f"Step {step}: the minibatch loss is {float(loss):.4g} (first step: "
                      f"{history['minibatch_loss'][0]:.4g}); training diverged and stops.")
            break
        if step % EVAL_FREQUENCY == 0:
            elapsed = time.time() - start
            start = time.time()
            history["validation_error"][-1] = trainer.error_rate(val_x, val_y)
            if config.verbose:
                print(f"Step {step} (epoch {step * BATCH_SIZE / train_size:.2f}), "
                      f"{1000 * elapsed / EVAL_FREQUENCY:.1f} ms")
                print(f"Minibatch loss: {float(loss):.3f}, learning rate: {rate:.6f}")
                print(f"Minibatch error: {history['minibatch_error'][-1]:.1f}%")
                print(f"Validation error: {history['validation_error'][-1]:.1f}%", flush=True)
            if monitor is not None:
                monitor(step, history)
    seconds = time.time() - started
    test_error = trainer.error_rate(test_x, test_y) if diverged_at is None else float("nan")
    if config.verbose:
        print(f"Test error: {test_error:.1f}%")
    if config.out:
        _write_csv(config.out, history)
    return {"history": history, "test_error": test_error, "steps": num_steps, "diverged_at": diverged_at,
            "seconds": seconds, "parameters": trainer.model.count_params(), "model": trainer.model}


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


def _write_csv(path, history):
    import pandas as pd

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pd.DataFrame(history).to_csv(path, index=False, float_format="%.6g")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(Config):
        flag = "--" + field.name if field.name in ("self_test", "use_fp16") else "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            parser.add_argument(flag, action="store_true", default=field.default)
        else:
            kind = int if field.name == "steps" else (type(field.default) if field.default is not None else str)
            parser.add_argument(flag, type=kind, default=field.default)
    parser.add_argument("--quiet", action="store_true", help="no per-step printing")
    args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)}
    values["verbose"] = not args.quiet
    config = Config(**values)
    if config.l2_on not in ("product", "factors"):
        parser.error(f"--l2-on must be 'product' or 'factors'. Received: {config.l2_on!r}")
    return config


def main(argv=None):
    config = parse_args(argv)
    result = train(config)
    if config.self_test and result["test_error"] != 0.0:  # as the tutorial's --self_test asserts
        print(f"Self-test FAILED: expected 0.0% test error, got {result['test_error']}%", file=sys.stderr)
        return 1
    return 1 if result["diverged_at"] is not None else 0


if __name__ == "__main__":
    sys.exit(main())
