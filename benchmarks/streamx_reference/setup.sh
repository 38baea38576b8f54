#!/usr/bin/env bash
# Sets up the authors' Stream-X code beside alberta_eqx, for benchmarks/streamx_reference only.
#
# - A separate virtual environment (.venv here) with CPU PyTorch, gymnasium and minatar: the
#   authors' dependencies, not dependencies of alberta_eqx and never used by its tests or CI.
# - Their repository (github.com/mohmdelsayed/streaming-drl, CC BY-NC 4.0) checked out at the
#   pinned commit into upstream/ (git-ignored). Nothing of theirs is copied into this repository;
#   run_theirs.py runs their unmodified stream_q_minatar.py and parses what it writes.
#
# Usage:  bash benchmarks/streamx_reference/setup.sh [PATH_OR_URL_OF_A_CLONE]
#   With no argument the script clones https://github.com/mohmdelsayed/streaming-drl.
#   Give a local clone (or a bare mirror) where the machine cannot reach GitHub.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../reference_setup.sh
source "$HERE/../reference_setup.sh"
# The commit the recorded results were produced with (2025-03-01, "modify the hps in the code to
# match the one used to produce the figures with MinAtar").
PINNED=407dca7a8b584c1c20bc649053557f66e270b1e6
SOURCE="${1:-https://github.com/mohmdelsayed/streaming-drl}"
PYTHON="${PYTHON:-python3.11}"

# Only the scripts: a partial mirror may lack the large assets (gif, png).
checkout_pinned "$HERE" "$SOURCE" "$PINNED" '*.py' '*.md' requirements.txt
torch_venv "$HERE" "$PYTHON"
PIP="$HERE/.venv/bin/pip"
"$PIP" install --quiet "numpy==1.26.4" "pandas==2.2.2" "gymnasium==0.29.1" "minatar==1.0.15"
"$HERE/.venv/bin/python" - <<'PY'
import gymnasium, minatar, numpy, torch
print("torch", torch.__version__, "gymnasium", gymnasium.__version__, "numpy", numpy.__version__)
gymnasium.make("MinAtar/Breakout-v1")
PY
