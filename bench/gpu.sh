#!/usr/bin/env bash
# The GPU check of issue 33, for a machine with JAX (and its CUDA plugin) but neither
# TensorFlow nor Keras, and no network: installs the carried wheels (Keras and what the
# image lacks of its dependencies) into a private folder, points the loaders at the
# carried data, and runs bench/gpu_check.py on JAX (the MNIST tutorial, original and
# overparameterized, 10 epochs; Figure 3's l4 sweep over 10^6 steps).
#
#   bench/gpu.sh [gpu_check.py flags]      e.g. bench/gpu.sh --mnist-steps 20 --sweep-steps 200
#
# WHEELS (default .whl): the wheels; prepare them here with bench/gpu_wheels.sh.
# TFOVP_DATA_DIR (default .data, else ../shared/data): mnist/ and gas-sensor-drift/.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="${WHEELS:-.whl}"
# The carried wheels only where Keras is missing (they are built for the GPU image's Python).
if ! python3 -c "import keras" 2> /dev/null && [ -d "$WHEELS" ] && compgen -G "$WHEELS/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/tfovp-site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/tfovp-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -z "${TFOVP_DATA_DIR:-}" ]; then
  if [ -d .data ]; then export TFOVP_DATA_DIR="$PWD/.data"; else export TFOVP_DATA_DIR="$(cd .. && pwd)/shared/data"; fi
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
exec python3 bench/gpu_check.py "$@"
