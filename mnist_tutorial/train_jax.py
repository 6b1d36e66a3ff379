"""The tutorial's training step on JAX: the same model, loss, momentum, decay and
end-to-end preconditioning as `mnist_tutorial.train.Trainer`, as one `jax.jit` function
of the variables' values (Keras' stateless API), the new values written back to the
model's variables after each step so that evaluation, kernel norms and checkpoints read
them as on TensorFlow. One device, float32: `--strategy mirrored` and `--use_fp16` are
TensorFlow-only. The preconditioned run computes P_W(G) in float64, as on TensorFlow,
and so switches JAX's 64-bit floats on (the model stays float32)."""

import jax
import keras
import numpy as np
from keras import ops

from mnist_tutorial.config import BATCH_SIZE
from mnist_tutorial.model import l2_tensors
from mnist_tutorial.parts import build_training, error_rate
from tfovp.end_to_end import precondition


class JaxTrainer:
    """The model, optimizer and compiled train/eval steps of one run on JAX."""

    def __init__(self, config, train_size):
        if config.strategy != "default":
            raise ValueError(
                f"--strategy {config.strategy}: MirroredStrategy is TensorFlow-only; on JAX the tutorial runs on "
                "one device (--strategy default)"
            )
        if config.use_fp16:
            raise ValueError("--use_fp16: mixed float16 is TensorFlow-only here; on JAX the tutorial runs in float32")
        if config.preconditioned:
            jax.config.update("jax_enable_x64", True)  # P_W(G) in float64, as on TensorFlow
        self.config = config
        self.model, self.schedule, self.optimizer, self.preconditioned = build_training(config, train_size)
        self._train = jax.jit(self._stateless_step)
        self._predict = jax.jit(self._stateless_predict)

    def loss(self, logits, labels):
        """(printed loss, mean cross-entropy, L2 term) as `Trainer.loss` computes them,
        in keras.ops (the variables read inside the caller's StatelessScope)."""
        logits = ops.cast(logits, "float32")
        per_example = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        data = ops.sum(per_example) / BATCH_SIZE
        l2 = sum(ops.sum(ops.square(ops.cast(t, "float32"))) / 2 for t in l2_tensors(self.model, self.config.l2_on))
        l2_term = 5e-4 * l2
        return data + l2_term, data, l2_term

    def _stateless_step(self, trainable, non_trainable, optimizer_variables, images, labels):
        model = self.model

        def objective(trainable):
            mapping = [*zip(model.trainable_variables, trainable), *zip(model.non_trainable_variables, non_trainable)]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                logits = model(images, training=True)
                loss, data, l2_term = self.loss(logits, labels)
            updated = [scope.get_current_value(v) for v in model.non_trainable_variables]
            updated = [old if new is None else new for old, new in zip(non_trainable, updated)]
            return loss, (data, l2_term, logits, updated)

        (loss, (data, l2_term, logits, non_trainable)), gradients = jax.value_and_grad(objective, has_aux=True)(
            trainable
        )
        gradients = [
            _precondition(value, g) if flagged else g
            for value, g, flagged in zip(trainable, gradients, self.preconditioned)
        ]
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, gradients, trainable)
        wrong = ops.sum(ops.cast(ops.not_equal(ops.argmax(logits, 1), labels), "float32"))
        return (loss, wrong, data, l2_term), trainable, non_trainable, optimizer_variables

    def _stateless_predict(self, trainable, non_trainable, images):
        logits, _ = self.model.stateless_call(trainable, non_trainable, images, training=False)
        return ops.softmax(ops.cast(logits, "float32"))

    def _values(self, variables):
        return [v.value for v in variables]

    def step(self, images, labels):
        """(printed loss, wrong predictions, cross-entropy, L2 term) of one update on a
        batch of NumPy images and labels; the model's and optimizer's variables hold the
        new values afterwards."""
        model, optimizer = self.model, self.optimizer
        values, trainable, non_trainable, optimizer_variables = self._train(
            self._values(model.trainable_variables),
            self._values(model.non_trainable_variables),
            self._values(optimizer.variables),
            images,
            np.asarray(labels, np.int32),  # class indices: int32 whether or not 64-bit types are on
        )
        for variables, new in (
            (model.trainable_variables, trainable),
            (model.non_trainable_variables, non_trainable),
            (optimizer.variables, optimizer_variables),
        ):
            for variable, value in zip(variables, new):
                variable.assign(value)
        return values

    def error_rate(self, images, labels):
        """Percent of wrong predictions, evaluated in batches of EVAL_BATCH_SIZE."""
        trainable = self._values(self.model.trainable_variables)
        non_trainable = self._values(self.model.non_trainable_variables)
        return error_rate(lambda batch: self._predict(trainable, non_trainable, batch), images, labels)


def _precondition(kernel, gradient):
    """P_W(G) of Eq. 10 with N = 2, through the small Gram matrix, in float64."""
    direction = precondition(ops.cast(kernel, "float64"), ops.cast(gradient, "float64"), 2, method="gram")
    return ops.cast(direction, gradient.dtype)
