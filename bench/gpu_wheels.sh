#!/usr/bin/env bash
# The wheels bench/gpu.sh installs on a machine that cannot download: Keras and the
# dependencies the GPU image lacks (namex, optree), for Python 3.12 on x86-64 Linux,
# into .whl (git-ignored through .git/info/exclude); and the data it reads into .data.
#   bench/gpu_wheels.sh [KERAS_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-$(python3 -c 'import keras; print(keras.__version__)')}"
mkdir -p .whl .data
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.data/' .git/info/exclude 2>/dev/null || echo '/.data/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "keras==$version" namex optree
cp -r "${TFOVP_DATA_DIR:-../shared/data}/mnist" "${TFOVP_DATA_DIR:-../shared/data}/gas-sensor-drift" .data/
du -sh .whl .data
