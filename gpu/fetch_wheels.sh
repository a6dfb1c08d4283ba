#!/usr/bin/env bash
# Fetch the wheels a bare GPU machine lacks into .whl/ (ignored by git through
# .git/info/exclude). Run on a machine with PyPI access, from the repository root; the GPU
# machine's Python is 3.12 with numpy, torch and cupy already installed.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
mkdir -p .git/info && { grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude; }
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  hydra-core==1.3.2 omegaconf==2.3.0
# antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 needs) is published as a source archive
# only: build its pure-Python wheel here.
$PY -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -l .whl
