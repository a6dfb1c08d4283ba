# The user's verbs. Each target sets up the virtual environment first (once, and again when
# pyproject.toml changes), so on a fresh machine with only Python `make train` and
# `make test` are all it takes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra pip arguments, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu on a machine
# whose default index would bring a CUDA build of torch.
TORCH_INDEX ?=
TORCH_SPEC := torch>=2.10,<2.14
EXTRAS ?= dev

.PHONY: install train sweep test test-fast perf benchmark benchmark-rectangular gpu-check report lint format clean conformance faults

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if [ -n "$(TORCH_INDEX)" ]; then \
	  $(BIN)/python -m pip install --quiet --index-url "$(TORCH_INDEX)" "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/mlo-train $(ARGS)

# A small local sweep: 2 agents x 2 seeds on <2,2,2>, two jobs at a time (joblib), then
# outputs/multirun/<date>/<time>_<token>/sweep_summary.{md,csv,png}. ARGS adds overrides.
SWEEP_ARGS ?= env=matmul_2x2x2 agent=greedy,random seed=1,2 trainer.episodes=100 \
	trainer.time_limit_s=60 hydra/launcher=joblib hydra.launcher.n_jobs=2
sweep: $(STAMP)
	$(BIN)/mlo-train -m $(SWEEP_ARGS) $(ARGS)

# The whole suite (CI runs it): one worker per core (pytest-xdist), a test file's tests on one
# worker, so a file's tests keep their order and share nothing with the other workers.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=20 $(PYTEST_ARGS)

# The fast tier for development: no test marked slow, and a test that starts Python or an
# entry point in a subprocess is skipped when it does; one worker per core (pytest-xdist,
# a test file's tests on one worker); make test runs everything.
test-fast: $(STAMP)
	MLO_FAST_TESTS=1 $(BIN)/python -m pytest -q -m "not slow" -n auto --dist loadfile \
	  --durations=10 $(PYTEST_ARGS)

# The long fault campaign (kills, signals, a silent W&B server, hostile values, bad
# checkpoints, disk faults, racing launches) on the real mlo-train: perf/faults.md.
# FAULTS_ARGS="--only signals disk" runs some categories (the table then holds only those).
faults: $(STAMP)
	$(BIN)/python perf/faults.py $(FAULTS_ARGS)

# The performance suite: every perf/suite_*.py. A full run writes the committed tables under
# perf/; PERF_ARGS="--only NAME --quick" runs one suite with a small budget and writes under
# outputs/perf/ (UPDATE_PERF=1: perf/ in any case).
UPDATE_PERF ?=
perf: $(STAMP)
	$(BIN)/python perf/run.py $(PERF_ARGS) $(if $(UPDATE_PERF),--update)

# Strassen and AlphaTensor's <4,4,4> rank-49 algorithm against the backend's plain product
# (CuPy on a CUDA device, else NumPy), each beside its classical control (the school scheme
# of the same block shape, same executor) with 95% intervals and the arithmetic bound.
# BENCH_SIZES empty: the full sizes of the device (CPU 2048 4096 8192; GPU 4096 8192 16384).
# Tables: console and outputs/benchmarks/<date>/...; UPDATE_PERF=1 also rewrites
# $(PERF_DIR)/benchmark.md and .json (PERF_DIR=perf: the committed tables).
# BENCH_ARGS="--sums fused numpy": CPU block sums fused and not, side by side (add% column).
BENCH_ALGORITHMS ?= strassen alphatensor-4x4x4
BENCH_SIZES ?=
BENCH_REPEATS ?= 3
BENCH_DTYPE ?= float32
BENCH_ARGS ?=
PERF_DIR ?= perf
benchmark: $(STAMP)
	$(BIN)/mlo-benchmark $(BENCH_ALGORITHMS) \
		$(if $(BENCH_SIZES),--sizes $(BENCH_SIZES),--full-sizes) \
		--repeats $(BENCH_REPEATS) --dtype $(BENCH_DTYPE) \
		$(if $(UPDATE_PERF),--markdown $(PERF_DIR)/benchmark.md --json $(PERF_DIR)/benchmark.json) \
		$(BENCH_ARGS)

# Rectangular products (issue 17): non-square schemes on the products they fit, Strassen
# for reference; NAME*NAME is the product of two schemes (<3,2,3> x Strassen = <6,4,6>
# rank 105, its control school-6x4x6). UPDATE_PERF=1 rewrites
# $(PERF_DIR)/benchmark-rectangular.md and .json.
RECT_ALGORITHMS ?= strassen best-3x2x3 best-4x2x4 best-3x2x3*strassen
RECT_SHAPES ?= 6144x4096x6144 12288x8192x12288
benchmark-rectangular: $(STAMP)
	$(BIN)/mlo-benchmark $(foreach name,$(RECT_ALGORITHMS),'$(name)') --shape $(RECT_SHAPES) \
		--repeats $(BENCH_REPEATS) --dtype $(BENCH_DTYPE) \
		$(if $(UPDATE_PERF),--markdown $(PERF_DIR)/benchmark-rectangular.md \
		--json $(PERF_DIR)/benchmark-rectangular.json) $(BENCH_ARGS)

# On a bare GPU machine (one H200, < 8 minutes): installs the wheels carried in .whl/, runs
# the CUDA tests, a small mlo-train with the CuPy benchmark, and mlo-benchmark with CuPy
# (Strassen and <4,4,4> at 8192 and 16384, levels 1-2, both strategies, TF32 off and on);
# writes perf/benchmark-gpu.md. GPU_CHECK_ARGS="--dry-run" rehearses it on the CPU.
GPU_CHECK_ARGS ?=
gpu-check:
	bash gpu/check.sh $(GPU_CHECK_ARGS)

# Past benchmark results from the registry (outputs/benchmarks.sqlite).
report: $(STAMP)
	$(BIN)/mlo-benchmark report $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests

# The readers against the public scheme collection (issue 27): every scheme file with p <= 8 of
# dronperminov/FastMatrixMultiplication through mlo-algorithms verify's code, into
# perf/catalogue_conformance.{md,json}. COLLECTION: its checkout or its (bare) git directory.
COLLECTION ?=
conformance: $(STAMP)
	@test -n "$(COLLECTION)" || { echo "make conformance: set COLLECTION=<checkout or git dir of dronperminov/FastMatrixMultiplication>"; exit 2; }
	$(BIN)/python perf/conformance_catalogue.py --collection "$(COLLECTION)"

format: $(STAMP)
	$(BIN)/ruff format src tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
