#!/usr/bin/env bash
# Sets up the authors' UPGD code beside alberta_eqx, for benchmarks/upgd_reference only.
#
# - A separate virtual environment (.venv here) with CPU PyTorch and NumPy: the authors'
#   dependencies, not dependencies of alberta_eqx and never used by its tests or CI.
# - Their repository (github.com/mohmdelsayed/upgd, MIT) checked out at the pinned commit
#   into upstream/ (git-ignored). Nothing of theirs is copied into this repository;
#   compare.py and speed.py import their optimizer classes from
#   upstream/core/optim/weight_upgd/first_order.py at run time (that module needs only torch;
#   the rest of their code needs backpack, HesScale and torchvision, which are not installed).
#
# Usage:  bash benchmarks/upgd_reference/setup.sh [PATH_OR_URL_OF_A_CLONE]
#   With no argument the script clones https://github.com/mohmdelsayed/upgd.
#   Give a local clone (or a bare mirror) where the machine cannot reach GitHub.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../reference_setup.sh
source "$HERE/../reference_setup.sh"
# The commit the recorded results were produced with (2024-10-14, "update gitmodules file").
PINNED=b75e90ad4b09c28971ac9dbb902a8fd86709b28c
SOURCE="${1:-https://github.com/mohmdelsayed/upgd}"
PYTHON="${PYTHON:-python3.11}"

# Only the Python code and text (no HesScale submodule: first_order.py does not use it).
checkout_pinned "$HERE" "$SOURCE" "$PINNED" '*.py' '*.md' LICENSE
torch_venv "$HERE" "$PYTHON"
PIP="$HERE/.venv/bin/pip"
"$PIP" install --quiet "numpy==1.26.4"
"$HERE/.venv/bin/python" - "$HERE/upstream" <<'PY'
import sys

import numpy
import torch

sys.path.insert(0, sys.argv[1])
from core.optim.weight_upgd.first_order import (  # noqa: F401
    FirstOrderGlobalUPGD,
    FirstOrderNonprotectingGlobalUPGD,
)

print("torch", torch.__version__, "numpy", numpy.__version__, "their UPGD imports")
PY
