"""Where a result came from: package versions, the machine, the envelope of every
figure's JSON (`RunSummary`), and a short hash of the settings that change a result
(used to name stored runs)."""

import dataclasses
import hashlib
import json
import os
import platform
import time

import numpy as np


def versions():
    """Python, TensorFlow, Keras, NumPy and tfovp versions."""
    import keras
    import tensorflow as tf

    import tfovp

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "tfovp": tfovp.__version__,
    }


def _cpu():
    """(model name, widest SIMD extension) from /proc/cpuinfo, or (None, None). XLA
    compiles for the instruction set, so the SIMD width is part of where a number came
    from: the same run can round differently on another processor."""
    try:
        with open("/proc/cpuinfo") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None, None
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
    flags = set(fields.get("flags", "").split())
    simd = next((name for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), None)
    return fields.get("model name"), simd


def machine():
    """Platform, processor (model and widest SIMD extension) and CPU count."""
    model, simd = _cpu()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": model,
        "simd": simd,
        "cpu_count": os.cpu_count(),
    }


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """The envelope of every figure's or study's JSON: which output, the command that wrote
    it, its settings, versions, machine, wall time of the invocation and, where it differs
    (runs resumed or reused), the training time of everything it reports."""

    figure: str
    command: str
    config: dict
    versions: dict
    machine: dict
    elapsed_seconds: float
    training_seconds: float | None = None

    FIELDS = ("figure", "command", "config", "versions", "machine", "elapsed_seconds")

    @classmethod
    def now(cls, figure, command, config, started, training_seconds=None):
        """The envelope of a run of `config` (a dataclass) started at `started` (time.time())."""
        return cls(
            figure,
            command,
            dataclasses.asdict(config),
            versions(),
            machine(),
            round(time.time() - started, 1),
            None if training_seconds is None else round(float(training_seconds), 1),
        )

    def to_json(self, **body):
        """The JSON object: the envelope's fields, then the output's own `body`."""
        envelope = dataclasses.asdict(self)
        if self.training_seconds is None:
            del envelope["training_seconds"]
        return {**envelope, **body}

    @classmethod
    def from_json(cls, data):
        """(RunSummary, the rest of the object); ValueError naming what is missing."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [name for name in cls.FIELDS if name not in data]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        names = (*cls.FIELDS, "training_seconds")
        return cls(**{k: data[k] for k in names if k in data}), {k: v for k, v in data.items() if k not in names}


def digest(values):
    """A short, stable hash of a JSON-able dict."""
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:10]


def settings_key(config, ignore=(), added=()):
    """A short hash of every field of the dataclass `config` except those in `ignore`
    (bookkeeping such as where files go, which changes no result) and those in `added`
    while they hold their default (settings added later: the runs stored before them
    keep their key)."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    return digest(
        {
            k: v
            for k, v in dataclasses.asdict(config).items()
            if k not in ignore and not (k in added and v == defaults[k])
        }
    )
