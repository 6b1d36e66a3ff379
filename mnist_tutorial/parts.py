"""What every backend's trainer of the tutorial shares (`mnist_tutorial.train` for
TensorFlow, `mnist_tutorial.train_jax` for JAX): the run's model, schedule and optimizer
as a run starts them, which gradients are preconditioned, and the error rate."""

import numpy as np

from mnist_tutorial.config import BATCH_SIZE, EVAL_BATCH_SIZE
from mnist_tutorial.model import TF1Momentum, TutorialDecay, build_model

DENSE_LAYERS = ("fc1", "fc2")


def error_rate(predict, images, labels):
    """Percent of wrong predictions of `predict` (a batch of images to class
    probabilities), evaluated in batches of EVAL_BATCH_SIZE."""
    wrong = 0
    for begin in range(0, len(images), EVAL_BATCH_SIZE):
        probabilities = np.asarray(predict(images[begin : begin + EVAL_BATCH_SIZE]))
        wrong += int(np.sum(np.argmax(probabilities, 1) != labels[begin : begin + EVAL_BATCH_SIZE]))
    return 100.0 * wrong / len(images)


def build_training(config, train_size):
    """(model, learning-rate schedule, optimizer, per trainable variable whether its
    gradient is preconditioned) of a run, as every backend's trainer starts it."""
    model = build_model(
        config.overparameterize,
        config.overparam_init_std,
        config.seed,
        config.dropout_rate,
        factor_convs=config.factor_convs,
    )
    if config.preconditioned:
        _start_from_products(model, config)
    schedule = TutorialDecay(config.base_lr, BATCH_SIZE, train_size)
    optimizer = TF1Momentum(schedule, 0.9)
    optimizer.build(model.trainable_variables)
    kernels = {id(model.get_layer(name).kernel) for name in DENSE_LAYERS}
    return model, schedule, optimizer, [config.preconditioned and id(v) in kernels for v in model.trainable_variables]


def _start_from_products(model, config):
    """Set the dense kernels of the original model to the initial product kernels of the
    factored model with the same seed and init std (everything else is the same draw)."""
    factored = build_model(True, config.overparam_init_std, config.seed, config.dropout_rate)
    for name in DENSE_LAYERS:
        model.get_layer(name).kernel.assign(factored.get_layer(name).kernel)
