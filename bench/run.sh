#!/usr/bin/env bash
# make bench: measured, never asserted. Builds a fresh demo in a temporary folder (so the submission below
# is really evaluated, never found already done), times submitting sepsis-icu v2 end to end, then starts
# ModelBoard on that demo and prints the first-render time of every page for every role.
# Before that: the subgroup engine against fairlearn, and the drift engine against evidently, on the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
echo "== Subgroup metrics: ModelBoard vs fairlearn MetricFrame (15 attribute sets, AUROC included) =="
PYTHONPATH=. $PY bench/subgroups.py
echo
echo "== Drift: ModelBoard vs evidently DataDriftPreset (23 columns) =="
PYTHONPATH=. $PY bench/drift.py
echo
echo "== SHAP for a one-hot pipeline with missing lactate: ModelBoard vs shap's permutation explainer =="
PYTHONPATH=. $PY bench/explanations.py
echo
BENCH_HOME=$(mktemp -d)
trap 'rm -rf "$BENCH_HOME"' EXIT
export MODELBOARD_HOME="$BENCH_HOME/home"
unset MLFLOW_TRACKING_URI MLFLOW_REGISTRY_URI
echo "== Submitting sepsis-icu v2 end to end on a fresh demo ($(nproc) cores) =="
TIMEFORMAT="Building the demo: %R s"
time { $PY -m core.cli demo >/dev/null 2>&1; }
TIMEFORMAT="Submitting sepsis-icu v2 (validation, worker, metrics with bootstrap CIs, SHAP, comparison): %R s"
time { $PY -m core.cli submit --model sepsis-icu --version 2 --json >/dev/null 2>&1 || [ $? -eq 3 ]; }  # 3: a criterion failed
TIMEFORMAT="Submitting sepsis-icu-charted v1 (text input, missing lactate, predict_proba, SHAP per input): %R s"
time { $PY -m core.cli submit --model sepsis-icu-charted --version 1 --json >/dev/null 2>&1 || [ $? -eq 3 ]; }
echo
echo "== First render of every page, every role (headless Chromium, the demo above with v2 evaluated) =="
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false $PY -m streamlit run app/main.py --server.address 127.0.0.1 \
  --server.port "$PORT" --server.headless true --browser.gatherUsageStats false >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$BENCH_HOME"' EXIT
for _ in $(seq 1 120); do
  $PY -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/_stcore/health')" 2>/dev/null && break
  sleep 0.5
done
$PY bench/page_render.py "http://127.0.0.1:$PORT"
echo
echo "== Monitoring the demo's 90 days: ModelBoard's monitor vs evidently's Report on the same windows =="
kill $SERVER 2>/dev/null || true
PYTHONPATH=. $PY bench/monitoring.py
echo
echo "== Embedded (DuckDB) vs hospital (PostgreSQL) governance store on the same demo =="
PYTHONPATH=. $PY bench/profiles.py
echo
echo "== Sign-off on the same demo: each signature on the path to production, then audit verify =="
PYTHONPATH=. $PY bench/signoff.py
TIMEFORMAT="python -m core.cli audit verify on that demo, whole process (imports included): %R s"
time { $PY -m core.cli audit verify >/dev/null; }
