"""`EndToEndLinear.train_step` on each Keras backend: the gradient G of the compiled loss
w.r.t. the kernel K is replaced by P_K(G) + lambda*N*K (Eq. 10) before the compiled
optimizer applies it.

Each backend takes its gradient its own way (a `tf.GradientTape`; `jax.value_and_grad`
of Keras' stateless loss, the optimizer applied with `stateless_apply`; PyTorch's
`backward`), so each has its own step, and every step goes through the model's
`preconditioned_direction`. The loss is scaled as in Keras' own steps (a
`LossScaleOptimizer` unscales the gradients it is given): P is linear in G, so a scaled
gradient s*G gives s*P_K(G), and the decay term takes s*K.
"""

import keras


def train_step(model, *args):
    """The step of the backend Keras runs on (JAX passes the state, the others the data)."""
    return _STEPS[keras.backend.backend()](model, *args)


def _tensorflow(model, data):
    import tensorflow as tf

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        scaled_loss = model.optimizer.scale_loss(loss)
    gradient = tape.gradient(scaled_loss, model.kernel)
    direction = model.preconditioned_direction(gradient, model.optimizer.scale_loss(model.kernel))
    model.optimizer.apply([direction], [model.kernel])
    for metric in model.metrics:
        if metric.name == "loss":
            metric.update_state(loss)
        else:
            metric.update_state(y, y_pred, sample_weight=sample_weight)
    return {metric.name: metric.result() for metric in model.metrics}


def _jax(model, state, data):
    """Keras' JAX step (`compute_loss_and_updates` under `jax.value_and_grad`, then
    `optimizer.stateless_apply`) with the kernel's gradient preconditioned: everything is
    read from `state`, never from the variables (they hold the values before the jit)."""
    import jax

    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    (_, (unscaled_loss, y_pred, non_trainable, metrics_variables)), gradients = jax.value_and_grad(
        model.compute_loss_and_updates, has_aux=True
    )(
        trainable,
        non_trainable,
        metrics_variables,
        x,
        y,
        sample_weight,
        training=True,
        optimizer_variables=optimizer_variables,
    )
    index = _kernel_index(model)
    kernel = trainable[index]
    mapping = list(zip(model.optimizer.variables, optimizer_variables))
    with keras.StatelessScope(state_mapping=mapping):
        scaled_kernel = model.optimizer.scale_loss(kernel)
    gradients = list(gradients)
    gradients[index] = model.preconditioned_direction(gradients[index], scaled_kernel, kernel=kernel)
    trainable, optimizer_variables = model.optimizer.stateless_apply(optimizer_variables, gradients, trainable)
    logs, metrics_variables = model._update_metrics_variables(
        metrics_variables, unscaled_loss, x, y, y_pred, sample_weight
    )
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def _torch(model, data):
    """Keras' PyTorch step with the kernel's gradient preconditioned."""
    import torch

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y_pred = model(x, training=True)
    model.zero_grad()
    loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
    model._loss_tracker.update_state(loss, sample_weight=keras.ops.shape(x)[0])
    model.optimizer.scale_loss(loss).backward()
    with torch.no_grad():
        direction = model.preconditioned_direction(
            model.kernel.value.grad, model.optimizer.scale_loss(model.kernel.value.detach())
        )
        model.optimizer.apply([direction], [model.kernel])
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def _kernel_index(model):
    return next(i for i, v in enumerate(model.trainable_variables) if v is model.kernel)


_STEPS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
