#!/usr/bin/env bash
# A venv for bsuite's analysis beside this script (.venv, ignored by git), Python 3.11.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3.11}"
"$python" -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
echo "$here/.venv/bin/python"
