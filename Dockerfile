# The API image: the service, the bundled USE-multilingual model and the sample SOPs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    KB_DATA_DIR=/data KB_SOPS_DIR=/sops KB_HOST=0.0.0.0 KB_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY kb_service ./kb_service
COPY ingest ./ingest
COPY api ./api
COPY cli ./cli
# The default embedder needs no torch; add the `st` extra for sentence-transformers models.
RUN pip install . && useradd --system --uid 10001 kb && mkdir -p /data /sops && chown kb /data /sops
COPY --chown=kb sops /sops

USER kb
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD \
  python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["kb", "serve"]
