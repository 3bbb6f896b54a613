# One image for every Yigongti service: `python -m services.<name> serve|migrate|relay|load-demo`.
# Multi-stage: dependencies are built in the first stage; the runtime stage is slim and runs as non-root.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
RUN pip install .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 yigongti && useradd --system --uid 10001 --gid 10001 --home-dir /app yigongti \
    && mkdir -p /auth && chown 10001:10001 /auth
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# SIGTERM: uvicorn stops accepting, finishes in-flight requests (20 s), then the lifespan flushes the
# outbox relay and stops the consumers (offsets are committed after every applied batch).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m"]
CMD ["services.registry", "serve", "--host", "0.0.0.0", "--port", "8000"]
