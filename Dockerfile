# ModelBoard on the embedded demo, the same steps as `make run`.
# Build: docker build -t modelboard .   Run: docker run -p 8501:8501 modelboard
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    MODELBOARD_HOME=/var/lib/modelboard \
    MODELBOARD_AUDIT_LOG_DIR=/var/lib/modelboard-audit \
    MODELBOARD_AUDIT_KEY_FILE=/var/lib/modelboard-keys/audit-checkpoint.key \
    HOST=0.0.0.0 \
    PORT=8501

RUN apt-get update && apt-get install -y --no-install-recommends make git && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 modelboard \
    && mkdir -p /var/lib/modelboard /var/lib/modelboard-audit /var/lib/modelboard-keys \
    && chown modelboard /var/lib/modelboard /var/lib/modelboard-audit /var/lib/modelboard-keys \
    && chmod 700 /var/lib/modelboard-audit /var/lib/modelboard-keys

WORKDIR /app
COPY --chown=modelboard requirements.txt constraints.txt Makefile ./
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt -c constraints.txt \
    && touch .venv/.installed-$(cat requirements.txt constraints.txt | sha256sum | cut -c1-12)
COPY --chown=modelboard . .

USER modelboard
# The audit checkpoints and their signing key live outside the store's volume (docs/decisions/0014); in a hospital,
# mount the key from a secret store instead (MODELBOARD_AUDIT_KEY or a read-only file).
VOLUME ["/var/lib/modelboard", "/var/lib/modelboard-audit", "/var/lib/modelboard-keys"]
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"
# `make run` builds the demo into MODELBOARD_HOME if it is empty, then starts Streamlit.
CMD ["make", "run"]
