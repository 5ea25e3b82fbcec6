#!/usr/bin/env bash
# Ours vs Hugging Face transformers MaskFormer, side by side on this machine:
# HF, then our train step and inference, then HF again (to bracket ours), with
# the load average before and after each. R50 at 640², batch 1, 2 threads.
#
#   benchmarks/hf_baseline/compare.sh 2>&1 | tee /tmp/hf_compare.log
#
# Needs .venv (make venv) and .venv-hf (see benchmarks/hf_baseline/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2

hf() {
  echo "== HF transformers ($1) =="; uptime
  .venv-hf/bin/python benchmarks/hf_baseline/bench_hf_step.py \
    --image_size 640 --batch 1 --repeats 2 --threads 2
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
hf before
echo "== ours: train step =="; uptime
.venv/bin/python benchmarks/bench_train_step.py \
  --experiment maskformer_coco_panoptic --batch 1 --repeats 2 --modes function
echo "== ours: inference =="; uptime
.venv/bin/python benchmarks/bench_model.py --repeats 2 --modes function
hf after
uptime
