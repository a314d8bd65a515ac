#!/usr/bin/env bash
# Distillation on a GPU machine: bench/gpu_pipeline.py in three calls, because a call
# carries at most 64 MiB and the tree (tracked files ~34 MB) plus FER2013's images.zip (53 MiB) is more.
# The zip travels byte for byte in three 18 MiB parts, stashed in /tmp on the warm machine between calls.
#
#   Here, once:  mkdir -p gpu-data && split -b 18M -d ../shared/datasets/fer2013/images.zip gpu-data/images.zip.part
#                (.git/info/exclude lists /gpu-data/ and /.whl/; .whl holds keras 3.15.1, namex 0.1.0, optree 0.20.0)
#   Call 1:  command "bash scripts/gpu_pipeline.sh stash", carry ["gpu-data/images.zip.part00"], timeout_s 120
#   Call 2:  command "bash scripts/gpu_pipeline.sh stash", carry ["gpu-data/images.zip.part01"], timeout_s 120
#   Call 3:  command "bash scripts/gpu_pipeline.sh run 420", carry ["gpu-data/images.zip.part02", ".whl"],
#            timeout_s 560 (the driver's budget plus its start and the frontier)
#   Here, after:  .venv/bin/python bench/gpu_pipeline.py frontier /work/.device/...   (files_at of call 3)
set -euo pipefail
STASH=/tmp/fer2013-parts
SHA256=08d6e5d1006785a0fee93e771df9b7f300be04d77afcf0511ff26a0d3b145e42  # ../shared/datasets/fer2013/images.zip
mkdir -p "$STASH"
cp gpu-data/images.zip.part* "$STASH"/
ls -la "$STASH"
[ "${1:-}" = "run" ] || exit 0

cat "$STASH"/images.zip.part* > /tmp/images.zip
echo "$SHA256  /tmp/images.zip" | sha256sum -c - || { echo "images.zip is incomplete: stash every part first"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true
python3 bench/gpu_pipeline.py run --dataset /tmp/images.zip --out "${OUT:-/tmp/gpu-out}" \
    --budget-seconds "${2:-420}" --no-timing
