#!/usr/bin/env bash
# Ours vs Hugging Face transformers MaskFormer, side by side on this machine,
# R50 at 640², 2 threads: HF (train step + inference at batch 1), our train
# step, our serving signature at batch 1 and 8, HF batch-8 inference, HF
# again (to bracket ours); the load average before and after each; then the
# ratios ours / HF against the goals (train ≤ 0.85, inference ≤ 0.8).
#
#   bash benchmarks/hf_baseline/compare.sh 2>&1 | tee /tmp/hf_compare.log
#
# Needs .venv (make venv) and the HF venv: HF_PYTHON (default
# .venv-hf/bin/python, see benchmarks/hf_baseline/README.md). 11 min on the
# 2-core machine at load 3-6, less idle; the first run adds about a minute
# for our serving export (cached in /tmp/bench_serving).
set -euo pipefail
cd "$(dirname "$0")/../.."
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2
HF_PYTHON=${HF_PYTHON:-.venv-hf/bin/python}
LOGS=$(mktemp -d)
start=$(date +%s)

load() { echo "  load average ($1): $(cut -d' ' -f1-3 /proc/loadavg)"; }
quiet() { grep -v -E 'cuda_|TF-TRT|absl::|service\.cc|device_compiler|FutureWarning|warnings\.warn|USDT' || true; }

# step NAME COMMAND...: runs the command with the load before and after,
# its output shown and kept in $LOGS/NAME.
step() {
  local name=$1; shift
  echo "== $name =="
  load before
  "$@" 2>&1 | quiet | tee "$LOGS/$name"
  load after
}

echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "  flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' \
  | grep -E '^(avx2|avx512f|avx512_bf16|amx_[a-z0-9]+)$' | tr '\n' ' ')"
echo "  date: $(date -u '+%Y-%m-%d %H:%M UTC')"

step hf_before "$HF_PYTHON" benchmarks/hf_baseline/bench_hf_step.py \
  --image_size 640 --batch 1 --repeats 2 --threads 2
step ours_train .venv/bin/python benchmarks/bench_train_step.py \
  --experiment maskformer_coco_panoptic --batch 1 --repeats 2 --modes function
# Ops one at a time on the 2 intra-op threads (TF Serving:
# --tensorflow_inter_op_parallelism=1), as PyTorch runs them; then batch 1
# with TensorFlow's default inter-op threads for comparison.
step ours_serving .venv/bin/python benchmarks/bench_serving.py \
  --batch_sizes 1,8 --repeats 2 --threads 2 --inter_op 1
step ours_serving_default_threads .venv/bin/python \
  benchmarks/bench_serving.py --batch_sizes 1 --repeats 2 --threads 2
step hf_batch8 "$HF_PYTHON" benchmarks/hf_baseline/bench_hf_step.py \
  --image_size 640 --batch 8 --repeats 2 --threads 2 --skip_train
step hf_after "$HF_PYTHON" benchmarks/hf_baseline/bench_hf_step.py \
  --image_size 640 --batch 1 --repeats 2 --threads 2

.venv/bin/python - "$LOGS" <<'EOF'
import pathlib, re, sys
logs = pathlib.Path(sys.argv[1])
def read(name): return (logs / name).read_text()
def hf(name, row): return float(re.search(rf'{re.escape(row)}\s+([\d.]+)', read(name)).group(1))
ours_train = float(re.search(r'^function\s+[\d.]+\s+([\d.]+)', read('ours_train'), re.M).group(1))
pattern = r'batch (\d+) \(inter-op threads \w+\): ([\d.]+) s per call, ([\d.]+) images/s'
serving = {int(b): (float(s), float(r)) for b, s, r in re.findall(pattern, read('ours_serving'))}
default_threads = float(re.findall(pattern, read('ours_serving_default_threads'))[0][1])
hf_train = [hf(n, 'train step (total)') for n in ('hf_before', 'hf_after')]
hf_infer = [hf(n, 'inference (total)') for n in ('hf_before', 'hf_after')]
hf_rate8 = hf('hf_batch8', 'inference throughput:')
def ratios(ours, theirs): return '–'.join(f'{ours / t:.2f}' for t in sorted(theirs, reverse=True))
print('== summary (ours / HF; HF measured before and after ours) ==')
print(f'  train step: ours {ours_train:.2f} s, HF {hf_train[0]:.2f} s and {hf_train[1]:.2f} s: '
      f'ratio {ratios(ours_train, hf_train)} (goal <= 0.85)')
print(f'  inference, batch 1: ours {serving[1][0]:.2f} s, HF {hf_infer[0]:.2f} s and {hf_infer[1]:.2f} s: '
      f'ratio {ratios(serving[1][0], hf_infer)} (goal <= 0.8); ours with default inter-op threads '
      f'{default_threads:.2f} s: ratio {ratios(default_threads, hf_infer)}')
print(f'  inference, batch 8: ours {serving[8][1]:.2f} images/s, HF {hf_rate8:.2f} images/s')
EOF
load end
echo "compare.sh took $(( $(date +%s) - start )) s"
