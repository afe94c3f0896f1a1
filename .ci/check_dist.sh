#!/usr/bin/env bash
# Packaging check (run by .ci/run after the tests; `make check-dist`):
#   1. builds the sdist, and the wheel from the unpacked sdist (python -m
#      build), and checks both with `twine check`;
#   2. collects the whole test suite from the unpacked sdist: the same number
#      of tests as from the checkout;
#   3. installs the wheel into a fresh virtual environment holding only torch
#      (TORCH_SPEC, as in the Makefile) and the wheel's dependencies, then,
#      from an unrelated directory, runs the README's python blocks and a
#      one-epoch `remul train` on a tiny N-body split.
# Usage: TORCH_SPEC=... .ci/check_dist.sh [PYTHON] (default .venv/bin/python: the
# environment of `make test`, which has pytest and the test extras).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${1:-.venv/bin/python}
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute
TORCH_SPEC=${TORCH_SPEC:?'the torch to install, e.g. torch==2.13.0 (make check-dist sets it)'}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PIP="--disable-pip-version-check --quiet"

$PY -m pip install $PIP build twine
$PY -m build --outdir "$WORK/dist" .
$PY -m twine check --strict "$WORK"/dist/*

# The unpacked sdist carries the whole suite with its conftest.py files.
tar -xzf "$WORK"/dist/*.tar.gz -C "$WORK"
SDIST=$(echo "$WORK"/torch_geometric_remul-*/)
count() { (cd "$1" && "$PY" -m pytest -p no:cacheprovider \
    --collect-only -q -m '' 2>&1 | tail -n 1 \
    | grep -oE '^[0-9]+ tests? collected' | grep -oE '^[0-9]+'); }
in_checkout=$(count "$ROOT")
in_sdist=$(count "$SDIST")
echo "tests collected: checkout $in_checkout, sdist $in_sdist"
test "$in_checkout" -gt 0 && test "$in_checkout" = "$in_sdist"
# No test-only file in the wheel.
if unzip -l "$WORK"/dist/*.whl | grep -E 'conftest\.py|/tests?/'; then
    echo "test-only files in the wheel" >&2; exit 1
fi

# A fresh environment: torch, then the wheel with its dependencies.
$PY -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install $PIP $TORCH_SPEC
"$WORK/venv/bin/python" -m pip install $PIP "$WORK"/dist/*.whl
mkdir "$WORK/elsewhere"
cd "$WORK/elsewhere"
"$WORK/venv/bin/python" - "$ROOT/README.md" <<'PY'
import re
import sys

import torch_geometric_remul

assert 'site-packages' in torch_geometric_remul.__file__, \
    torch_geometric_remul.__file__
text = open(sys.argv[1]).read()
blocks = re.findall(r'```python\n(.*?)```', text, re.S)
namespace = {}
for block in blocks:  # the blocks of a page share one namespace
    exec(compile(block, 'README.md', 'exec'), namespace)
print(f'README: {len(blocks)} python blocks ran')
PY
"$WORK/venv/bin/remul" train --epochs 1 --num-train 20 --num-val 10 \
    --num-test 10 --eval-graphs 10 --eval-samples 2 --batch-size 10 \
    --hidden-channels 8 --num-layers 1 --data-root data --run-dir run \
    --no-progress
test -f run/results.json || { ls run; exit 1; }
echo "check_dist: OK"
