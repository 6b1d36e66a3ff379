"""The study layer: turns trained runs into measured claims (used by `reproduce/`).

- `records`: the typed record of a trained curve family (`CurveSpec`, `CurveFamily`).
- `runs`: training families with `tfovp.sweep` and reusing finished ones (`FamilyRunner`).
- `store`: finished runs on disk, written atomically; corrupt entries named and redone.
- `problem`, `optimum`: the data of a linear experiment and its float64 optima.
- `convergence`: relative excess loss, iterations to a level, best learning rates.
- `criteria`: every claim criterion with its thresholds; `claims`: the claims files.
- `outputs`, `plotting`, `tensorboard`: CSV/JSON tables, figures, TensorBoard scalars.
- `progress`: what a command runs, announced, under one progress bar.
- `provenance`: versions, machine, settings hashes.

Importing this package imports neither TensorFlow nor matplotlib; `plotting` imports
matplotlib and `tensorboard` TensorFlow when they are imported themselves.
"""
