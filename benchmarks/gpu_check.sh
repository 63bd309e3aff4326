#!/usr/bin/env bash
# One short GPU session (about 8 minutes): generation throughput on the SD-2.1-unCLIP-small architecture and the
# full NSD-size decoder fit on CUDA. Run from the repository root on the lent machine:
#   bash benchmarks/gpu_check.sh            (writes $OUT/, default ./results)
set -euo pipefail
OUT="${OUT:-results}"
mkdir -p "$OUT"
python3 -m venv /tmp/gess-venv && . /tmp/gess-venv/bin/activate
pip install -q torch==2.14.1 torchvision==0.29.1 && pip install -q -e . 2>&1 | tail -1
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/device.txt"
timeout 420 python benchmarks/generation_throughput.py --steps 50 --batches 1 4 8 16 --out "$OUT" 2>&1 | tee "$OUT/generation_throughput.txt"
timeout 240 python benchmarks/ridge_scale.py --size nsd --only gess-ridge --decoder --device cuda 2>&1 | tee "$OUT/ridge_nsd_cuda.txt"
