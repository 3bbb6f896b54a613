# One image for every Yigongti service: `python -m services.<name> serve|worker|migrate|load-demo`.
# Multi-stage: dependencies are installed in the first stage; the runtime stage is slim and runs as non-root.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# exactly the locked versions, hashes checked (`make lock` writes requirements.lock); a layer of its own,
# rebuilt only when the lock changes
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
RUN pip install --no-deps .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 yigongti && useradd --system --uid 10001 --gid 10001 --home-dir /app yigongti \
    && mkdir -p /auth && chown 10001:10001 /auth
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
# 8000: `serve` (HTTP only); 9100: `worker` (relay, consumers, sweeps; /healthz, /readyz, /metrics)
EXPOSE 8000 9100
# SIGTERM: `serve` stops accepting and finishes the requests in flight; `worker` stops its consumers
# (offsets are committed after every applied batch) and flushes the outbox relay once more.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m"]
CMD ["services.registry", "serve", "--host", "0.0.0.0", "--port", "8000"]
