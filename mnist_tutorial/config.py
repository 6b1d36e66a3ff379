"""The MNIST tutorial's settings (no TensorFlow): its constants, the `Config` of a run
and the `TrainingResult` it returns (the Flax-examples layout: `config.py`, `model.py`,
`train.py`, and `convolutional.py` with the command line).

What each setting means: `mnist_tutorial.convolutional` (the tutorial, setting for
setting).
"""

import dataclasses
import math
import pathlib

from tfovp.cli import check, setting

IMAGE_SIZE, NUM_CHANNELS, PIXEL_DEPTH, NUM_LABELS = 28, 1, 255, 10
VALIDATION_SIZE, SEED, BATCH_SIZE, EVAL_BATCH_SIZE, EVAL_FREQUENCY = 5000, 66478, 64, 64, 100
DIVERGENCE_FACTOR = 1000  # a minibatch loss above this multiple of the first one (or not finite) = diverged
L2_CHOICES = ("product", "factors", "none")
STRATEGIES = ("default", "mirrored")


@dataclasses.dataclass
class Config:
    overparameterize: bool = setting(False, "factor fc1 and fc2 (3136x512 . 512x512, 512x10 . 10x10; PAPER Fig. 5)")
    l2_on: str = setting(
        "product",
        "what the 5e-4 L2 term penalizes of the dense kernels: the product kernels, every factor of the "
        "factored model, or none (the biases are penalized in every case)",
        L2_CHOICES,
    )
    preconditioned: bool = setting(
        False,
        "the original architecture with its dense kernels started from the factored model's initial products "
        "and trained with the end-to-end preconditioner of Eq. 10 (N = 2) on their whole gradient",
    )
    factor_convs: bool = setting(
        False,
        "with --overparameterize, factor conv1 and conv2 too: a 5x5 convolution to the same width, then a 1x1 "
        "(not in the paper; tfovp.conv.FactoredConv2D)",
    )
    overparam_init_std: float = setting(0.1, "std of the new factors' truncated normal (> 0; the tutorial's 0.1)")
    base_lr: float = setting(0.01, "base learning rate (> 0), times 0.95 after every epoch")
    epochs: float = setting(10.0, "epochs of 55,000 images (> 0)")
    steps: int | None = setting(None, "stop after this many steps of 64 images (>= 1) instead of --epochs")
    self_test: bool = setting(
        False, "the tutorial's fake data (must reach 0 %% test error)", flag="--self_test", aliases=("--self-test",)
    )
    use_fp16: bool = setting(False, "mixed float16 precision", flag="--use_fp16", aliases=("--use-fp16",))
    seed: int = setting(SEED, "graph seed of the initializers and dropout (>= 0; the tutorial's 66478)")
    data_dir: str | None = setting(None, "folder with mnist/*.gz, searched before $TFOVP_DATA_DIR")
    tensorboard: str | None = setting(None, "write TensorBoard scalars and weight diagnostics to this folder")
    out: str | None = setting(None, "write every step's loss, learning rate and errors to this CSV file")
    strategy: str = setting("default", "one device, or data-parallel over the visible devices", STRATEGIES)
    dropout_rate: float = setting(0.5, "dropout rate in [0, 1) (the tutorial's 0.5)")
    quiet: bool = setting(False, "no printing every 100 steps")
    checkpoint: str | None = setting(None, "file to save the run to every --checkpoint-every steps and resume from")
    checkpoint_every: int = setting(500, "steps between checkpoints (>= 1)")

    def validate(self):
        """Raise ValueError naming the flag for a value the tutorial cannot use."""
        check(self.l2_on in L2_CHOICES, f"--l2-on {self.l2_on}: expected one of {', '.join(L2_CHOICES)}")
        check(self.strategy in STRATEGIES, f"--strategy {self.strategy}: expected one of {', '.join(STRATEGIES)}")
        for name in ("overparam_init_std", "base_lr", "epochs"):
            value = getattr(self, name)
            check(math.isfinite(value) and value > 0, f"--{name.replace('_', '-')} {value:g}: expected a number > 0")
        check(self.steps is None or self.steps >= 1, f"--steps {self.steps}: expected an integer >= 1")
        check(self.checkpoint_every >= 1, f"--checkpoint-every {self.checkpoint_every}: expected an integer >= 1")
        check(
            not self.factor_convs or self.overparameterize,
            "--factor-convs: factors the convolutions of the overparameterized model; add --overparameterize",
        )
        check(
            not (self.preconditioned and self.overparameterize),
            "--preconditioned: trains the original architecture; it cannot be combined with --overparameterize",
        )
        check(self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0")
        check(0 <= self.dropout_rate < 1, f"--dropout-rate {self.dropout_rate:g}: expected a number in [0, 1)")
        check(
            self.data_dir is None or pathlib.Path(self.data_dir).is_dir(), f"--data-dir {self.data_dir}: no such folder"
        )


@dataclasses.dataclass
class TrainingResult:
    """One training run: the per-step history (validation error only every 100 steps,
    None between), the test error in percent (NaN if it diverged), the steps planned,
    the step of divergence (None), wall seconds, parameters, and the trained model
    (not stored by `to_json`)."""

    history: dict
    test_error: float
    steps: int
    diverged_at: int | None
    seconds: float
    parameters: int
    model: object = dataclasses.field(default=None, repr=False, compare=False)

    def to_json(self):
        return {
            "history": self.history,
            "test_error": None if math.isnan(self.test_error) else self.test_error,
            "steps": self.steps,
            "diverged_at": self.diverged_at,
            "seconds": self.seconds,
            "parameters": self.parameters,
        }

    @classmethod
    def from_json(cls, data):
        history = {key: list(values) for key, values in data["history"].items()}
        if not {"step", "minibatch_loss", "validation_error"} <= set(history):
            raise ValueError("stored MNIST history lacks step, minibatch_loss or validation_error")
        if len({len(v) for v in history.values()}) != 1:
            raise ValueError("stored MNIST history has columns of different lengths")
        test_error = float("nan") if data["test_error"] is None else float(data["test_error"])
        return cls(
            history,
            test_error,
            int(data["steps"]),
            data["diverged_at"],
            float(data["seconds"]),
            int(data["parameters"]),
        )


def planned_steps(config):
    """Steps a run of `config` takes unless it diverges (--steps, else the epochs; the
    self-test runs one epoch of its 256 fake images)."""
    if config.steps is not None:
        return config.steps
    if config.self_test:
        return 256 // BATCH_SIZE
    return int(config.epochs * (60000 - VALIDATION_SIZE)) // BATCH_SIZE
