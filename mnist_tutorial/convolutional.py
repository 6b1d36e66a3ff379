"""TensorFlow's classic MNIST convolutional tutorial, ported to TF2/Keras.

Title: LeNet-5-like convnet on MNIST (tensorflow/models tutorials/image/mnist/convolutional.py)
Description: the tutorial's model and training, setting for setting (PAPER Sec. 5), with
the two dense layers optionally overparameterized as in Figure 5 (right) of Arora, Cohen
& Hazan (2018): 3136x512 -> 3136x512 . 512x512 and 512x10 -> 512x10 . 10x10.

    python -m mnist_tutorial.convolutional [--overparameterize] [--self_test] [--epochs 10] [--backend jax]

Setup: inputs scaled to [-0.5, 0.5]; conv 5x5x32 SAME + bias + ReLU; max-pool 2x2/2
SAME; conv 5x5x64 SAME + bias + ReLU; max-pool; flatten (3136); fc1 3136x512 + bias +
ReLU; dropout 0.5 (training only); fc2 512x10 + bias. Loss: mean softmax cross-entropy
+ 5e-4 * (l2_loss of fc1/fc2 kernels and biases), l2_loss(t) = sum(t^2)/2. Weights
truncated normal, std 0.1, seeded from the tutorial's 66478; biases conv1 0, others
0.1. Momentum 0.9 with TF1 semantics (accum = 0.9 accum + g; w -= lr accum); learning
rate 0.01 * 0.95^floor(step * 64 / 55000). Batch 64 in order, offset = (step * 64) mod
(55000 - 64); the first 5,000 training images are the validation set. Every 100 steps
it prints the minibatch loss, learning rate, minibatch and validation error.

The settings are in `mnist_tutorial.config`, the Keras model in `mnist_tutorial.model`
and the training loop in `mnist_tutorial.train` (imported when a run starts, so that
`--help` needs no TensorFlow); this module holds the command line.
"""

import os
import sys

from mnist_tutorial.config import Config
from tfovp.cli import ArgumentParser, add_config_flags, check, config_from

BACKENDS = ("tensorflow", "jax")


def _parser():
    parser = ArgumentParser(prog="python -m mnist_tutorial.convolutional", description=__doc__)
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend to train on (default: $KERAS_BACKEND, else tensorflow); JAX runs on one device in "
        "float32 (--strategy mirrored and --use_fp16 are TensorFlow-only)",
    )
    return add_config_flags(parser, Config)


def parse_args(argv=None):
    """Config from the command line (the tutorial's own --self_test and --use_fp16 keep
    their spelling; --self-test and --use-fp16 work too)."""
    return _parse(argv)[0]


def _parse(argv):
    """(Config, backend or None) from the command line."""
    parser = _parser()
    given = vars(parser.parse_args(argv))
    backend = given.pop("backend")
    try:
        return config_from(Config, given), backend
    except ValueError as error:
        parser.error(str(error))


def use_backend(backend):
    """Make `backend` Keras' backend (before Keras is imported); ValueError if Keras
    already runs on another."""
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise ValueError(
            f"--backend {backend}: Keras was imported on {keras.backend.backend()!r} already in this process "
            "(set KERAS_BACKEND before starting Python)"
        )
    os.environ["KERAS_BACKEND"] = backend


def check_outputs(config):
    """ValueError naming the flag of an output path the run could not write (--out,
    --checkpoint, --tensorboard), before any data is loaded or any step trained."""
    from tfovp.files import output_problem

    for name, folder in (("out", False), ("checkpoint", False), ("tensorboard", True)):
        path = getattr(config, name)
        problem = path and output_problem(path, folder=folder)
        check(not problem, f"--{name} {path}: {problem}")


def check_backend(config, backend):
    """ValueError naming the flag of a setting the backend cannot train with."""
    check(backend in BACKENDS, f"KERAS_BACKEND={backend}: the tutorial trains on {' or '.join(BACKENDS)}")
    if backend == "jax":
        check(config.strategy == "default", f"--strategy {config.strategy}: MirroredStrategy is TensorFlow-only")
        check(not config.use_fp16, "--use_fp16: mixed float16 is TensorFlow-only here (JAX runs in float32)")


def main(argv=None):
    config, backend = _parse(argv)
    from tfovp.console import import_tensorflow_quietly, stop_on_sigterm, stop_status, stop_word, stops_surfaced
    from tfovp.datasets import DatasetError

    prog = "python -m mnist_tutorial.convolutional"
    try:
        check_outputs(config)
        if backend is not None:
            use_backend(backend)
        check_backend(config, os.environ.get("KERAS_BACKEND", "tensorflow"))
    except ValueError as error:
        print(f"{prog}: error: {error} (see --help)", file=sys.stderr)
        return 2
    stop_on_sigterm()
    import_tensorflow_quietly()  # Keras alone on JAX
    from mnist_tutorial.train import train_and_evaluate

    try:
        with stops_surfaced():
            result = train_and_evaluate(config)
    except KeyboardInterrupt as error:
        print(f"\n{prog}: {stop_word(error)}; {_what_is_kept(config)}", file=sys.stderr)
        return stop_status(error)
    except DatasetError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{prog}: error: cannot write {error.filename or ''} ({error.strerror or error}); "
              f"{_what_is_kept(config)}", file=sys.stderr)  # fmt: skip
        return 1
    if config.self_test and result.test_error != 0.0:  # as the tutorial's --self_test asserts
        print(f"Self-test FAILED: expected 0.0% test error, got {result.test_error}%", file=sys.stderr)
        return 1
    return 1 if result.diverged_at is not None else 0


def _what_is_kept(config):
    """What an interrupted run leaves: its checkpoint's step, or nothing."""
    from mnist_tutorial.train import checkpoint_of

    checkpoint = checkpoint_of(config)
    step = checkpoint.saved_step() if checkpoint else None
    if step is None:
        hint = "" if config.checkpoint else " (--checkpoint FILE keeps a run every --checkpoint-every steps)"
        return f"nothing is kept{hint}"
    return f"{config.checkpoint} holds the run at step {step}; rerun the same command to continue from there"


if __name__ == "__main__":
    sys.exit(main())
