"""The study layer of the paper's reproduction: turns trained runs into measured claims
(used by the figure modules of `reproduce/`). The library parts it builds on are in
`tfovp`: curve families and their training (`tfovp.families`), the data of a linear
experiment and its optima (`tfovp.problem`, `tfovp.optimum`), convergence and speed-up
measures (`tfovp.convergence`, `tfovp.speedup`), tuning (`tfovp.tuning`).

- `runs`: families as cluster units, and reusing finished ones (`FamilyRunner`).
- `store`: finished runs on disk, written atomically; corrupt entries named and redone.
- `criteria`: every claim criterion with its thresholds; `claims`: the claims files.
- `outputs`, `plotting`, `tensorboard`: CSV/JSON tables, figures, TensorBoard scalars.
- `progress`: what a command runs, announced, under one progress bar.
- `provenance`: versions, machine, settings hashes.
- `cluster`: units of work on a Ray cluster; `circulation`: Theorem 2's line integrals.

Importing this package imports neither TensorFlow nor matplotlib; `plotting` imports
matplotlib and `tensorboard` TensorFlow when they are imported themselves.
"""
