#!/usr/bin/env bash
# make gpu-check: the GPU path end to end on a bare CUDA machine (one H200: < 8 minutes).
#
#   bash gpu/check.sh            # on the GPU machine, from the repository root
#   bash gpu/check.sh --dry-run  # rehearsal on a CPU: NumPy, tiny sizes, nothing in perf/
#
# Steps (each reported as ok/FAILED; the exit code is 1 when any failed):
#   1. what the machine has: Python, nvidia-smi, numpy/torch/cupy versions (no install of
#      those: a bare GPU machine is expected to hold them; missing ones are reported);
#   2. the wheels carried in .whl/ (Hydra, OmegaConf, antlr4 runtime; see gpu/README.md)
#      installed with `pip install --no-index --target /tmp/site`, PYTHONPATH set to
#      src/ and /tmp/site (the project runs from the source tree, nothing is built);
#   3. the CUDA tests: pytest -m cuda tests/benchmark;
#   4. mlo-train device=cuda benchmark.backend=cupy on a small budget;
#   5. mlo-benchmark with CuPy: Strassen and AlphaTensor's <4,4,4> rank 49 at 8192 and
#      16384, levels 1 and 2, stream and batched, TF32 off and on; table, JSON and
#      perf/benchmark-gpu.md (device, driver, CUDA, CuPy; speedups side by side).
# Files also go to $OUT when that is set (the device tool brings them back).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/site}
if [ $DRY = 1 ]; then
  RESULTS=${OUT:-$ROOT/outputs/gpu-check-dry}
  [ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"
else
  RESULTS=${OUT:-$ROOT/outputs/gpu-check}
fi
mkdir -p "$RESULTS"
export MLO_OUTPUTS=$RESULTS/outputs PYTHONUNBUFFERED=1
FAILED=()
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $RESULTS/NAME.log
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" 2>&1 | tee "$RESULTS/$name.log"
  local code=${PIPESTATUS[0]}
  if [ "$code" = 0 ]; then echo "== $name ok in $((SECONDS - started)) s"
  else echo "== $name FAILED (exit $code) after $((SECONDS - started)) s"; FAILED+=("$name"); fi
}

# 1. the machine
{
  echo "python: $($PY --version 2>&1) at $(command -v $PY)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 \
    || echo "nvidia-smi: not available"
  for module in numpy torch cupy; do
    $PY -c "import $module; print('$module', $module.__version__)" 2>/dev/null \
      || echo "$module: MISSING"
  done
  $PY -c "import torch; print('torch.cuda.is_available()', torch.cuda.is_available())" \
    2>/dev/null || true
} | tee "$RESULTS/machine.txt"

# 2. carried wheels
if ls .whl/*.whl >/dev/null 2>&1; then
  step install 180 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$SITE" .whl/*.whl
  export PYTHONPATH=$ROOT/src:$SITE
else
  echo "== install: no .whl/ here (expected on the GPU machine: see gpu/README.md)"
  export PYTHONPATH=$ROOT/src
fi
$PY -c "import hydra, omegaconf; print('hydra', hydra.__version__, 'omegaconf', omegaconf.__version__)" \
  2>&1 | tee -a "$RESULTS/machine.txt"

if [ $DRY = 1 ]; then
  DEVICE=(device=cpu benchmark.backend=numpy 'benchmark.sizes=[256,512]')
  BENCH=(--backend numpy --sizes 256 512 --tf32 off --repeats 2 --max-repeats 2 --chain 2)
  MARKDOWN=$RESULTS/benchmark-gpu.md
else
  DEVICE=(device=cuda benchmark.backend=cupy 'benchmark.sizes=[4096,8192]')
  BENCH=(--backend cupy --sizes 8192 16384 --tf32 off on --repeats 5 --max-repeats 5 --warmup 2 --chain 3)
  MARKDOWN=$ROOT/perf/benchmark-gpu.md
fi

# 3. CUDA tests (skipped, not failed, without a device)
step cuda-tests 180 $PY -m pytest -q -m cuda -p no:cacheprovider tests/benchmark

# 4. a small training run that ends in the CuPy benchmark stage
step train 120 $PY -m mlo_exp.train "${DEVICE[@]}" trainer.time_limit_s=20 plot=none \
  'benchmark.compare=[strassen]'

# 5. the comparison
step benchmark 360 $PY -m mlo_exp.benchmark.cli strassen alphatensor-4x4x4 "${BENCH[@]}" \
  --levels 1 2 --strategy stream batched --no-registry \
  --json "$RESULTS/benchmark-gpu.json" --markdown "$MARKDOWN"
[ -f "$MARKDOWN" ] && [ "$MARKDOWN" != "$RESULTS/benchmark-gpu.md" ] \
  && cp "$MARKDOWN" "$RESULTS/benchmark-gpu.md"

if [ ${#FAILED[@]} -gt 0 ]; then echo "gpu-check: FAILED steps: ${FAILED[*]}"; exit 1; fi
echo "gpu-check: all steps ok; results in $RESULTS"
