# reviewd in a container: slim Python, non-root user, journal on a volume.
#
#   docker build -t reviewd .
#   docker run -d --name reviewd \
#     -e FTRACK_SERVER=https://studio.ftrackapp.com -e FTRACK_API_USER=reviewd \
#     -e REVIEWD_API_KEY_FILE=/run/secrets/ftrack_api_key \
#     -v reviewd-state:/var/lib/reviewd -v /srv/pipeline/reviewd-plugins:/etc/reviewd/plugins:ro \
#     -p 127.0.0.1:9120:9120 reviewd
#
# Plugins: mount them at /etc/reviewd/plugins (FTRACK_EVENT_PLUGIN_PATH points there).
# Configuration: environment variables, or mount a TOML file at /etc/reviewd/reviewd.toml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system reviewd \
 && useradd --system --gid reviewd --home-dir /var/lib/reviewd --shell /usr/sbin/nologin reviewd

WORKDIR /opt/reviewd
COPY pyproject.toml README.md ./
COPY reviewd ./reviewd
RUN pip install ".[redis]" \
 && mkdir -p /var/lib/reviewd /etc/reviewd/plugins \
 && chown reviewd:reviewd /var/lib/reviewd

# The journal (SQLite, WAL) lives here: keep it across container restarts.
VOLUME ["/var/lib/reviewd"]

ENV REVIEWD_STATE_DIR=/var/lib/reviewd \
    REVIEWD_HTTP=0.0.0.0:9120 \
    REVIEWD_LOG_FORMAT=json \
    FTRACK_EVENT_PLUGIN_PATH=/etc/reviewd/plugins

USER reviewd
EXPOSE 9120

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9120/healthz', timeout=4).status == 200 else 1)"]

# SIGTERM drains in-flight handlers (daemon.grace_period); give `docker stop -t` more time.
STOPSIGNAL SIGTERM
# Exec form: reviewd runs as PID 1 and handles SIGTERM itself (no shell in between).
# Run with `docker run --init` when plugins start subprocesses, so zombies are reaped.
ENTRYPOINT ["reviewd"]
CMD []
