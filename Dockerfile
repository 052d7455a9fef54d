# syntax=docker/dockerfile:1
# One image for every service; the command picks the process:
#   cronjobs-api | cronjobs-worker | cronjobs (admin CLI, e.g. `cronjobs db init`).
# Build: docker build -t cronjobs:local .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the project and its dependencies into a virtualenv -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/cronjobs
WORKDIR /src
# Dependencies first (cached while only the code changes), then the code itself.
COPY pyproject.toml README.md ./
RUN mkdir -p api worker shared \
    && touch api/__init__.py worker/__init__.py shared/__init__.py \
    && /opt/cronjobs/bin/pip install . \
    && /opt/cronjobs/bin/pip uninstall --yes cronjobs
COPY shared ./shared
COPY api ./api
COPY worker ./worker
RUN /opt/cronjobs/bin/pip install --no-deps . \
    && /opt/cronjobs/bin/python -m compileall -q /opt/cronjobs/lib

# --- runtime: the virtualenv only, run as an unprivileged user ---------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="cronjobs" \
      org.opencontainers.image.description="User-managed scheduled jobs: API and worker"
RUN groupadd --system --gid 10001 cronjobs \
    && useradd --system --uid 10001 --gid cronjobs --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin cronjobs
COPY --from=build /opt/cronjobs /opt/cronjobs
ENV PATH=/opt/cronjobs/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CRON_API_HOST=0.0.0.0 \
    CRON_API_PORT=8000
# Numeric, so orchestrators can verify "runAsNonRoot" (uid 10001 = user cronjobs).
USER 10001:10001
WORKDIR /opt/cronjobs
EXPOSE 8000
# The worker drains on SIGTERM (CRON_SHUTDOWN_GRACE_SECONDS); give it longer with
# `docker stop --time` / compose `stop_grace_period`.
STOPSIGNAL SIGTERM
CMD ["cronjobs-api"]
