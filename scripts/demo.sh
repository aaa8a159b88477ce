#!/usr/bin/env bash
# Sets up Podium with the example extras and runs the main job: the digits classifier
# pipeline on the embedded engine (SQLite state in .podium/, report and Gantt chart in out/).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[examples]'
exec .venv/bin/podium run examples/ml_pipeline.py -p out_dir=out --gantt out/gantt.html "$@"
