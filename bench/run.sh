#!/usr/bin/env bash
# make bench: measured, never asserted. Starts ModelBoard on the demo in MODELBOARD_HOME
# (building it if missing), then prints the first-render time of every page for every role.
# Before that: the subgroup engine against fairlearn on the same data.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
echo "== Subgroup metrics: ModelBoard vs fairlearn MetricFrame (15 attribute sets, AUROC included) =="
PYTHONPATH=. $PY bench/subgroups.py
echo
echo "== First render of every page, every role (headless Chromium, demo data) =="
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$PY -m core.cli demo --if-missing >/dev/null 2>&1
TIMEFORMAT="Submitting sepsis-icu v2 end to end (validation, worker, SHAP, comparison; reused if evaluated before): %R s"
time { $PY -m core.cli submit --model sepsis-icu --version 2 --json >/dev/null 2>&1 || [ $? -eq 3 ]; }  # 3: a criterion failed
MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false $PY -m streamlit run app/main.py --server.address 127.0.0.1 --server.port "$PORT" --server.headless true \
  --browser.gatherUsageStats false >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/_stcore/health" >/dev/null && break
  sleep 0.5
done
$PY bench/page_render.py "http://127.0.0.1:$PORT"
