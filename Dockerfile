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
# The base image is pinned to an exact release (bump it deliberately, with the tests);
# tests/container builds and runs this file in CI (see docs/operations.md).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system reviewd \
 && useradd --system --gid reviewd --home-dir /var/lib/reviewd --shell /usr/sbin/nologin reviewd

WORKDIR /opt/reviewd
# Dependencies first, in a layer of their own: it is rebuilt only when pyproject.toml
# changes, not on every code change.  The list is read from pyproject.toml itself (core
# dependencies, the redis extra and the build backend), so there is no second list to
# keep in step.
COPY pyproject.toml ./
RUN python -c "import tomllib; t = tomllib.load(open('pyproject.toml', 'rb')); p = t['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['redis'] + t['build-system']['requires']))" \
    > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code: only this layer and the ones below are rebuilt when it changes.
COPY README.md ./
COPY reviewd ./reviewd
RUN pip install --no-deps --no-build-isolation . \
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

# Liveness from /healthz on the port REVIEWD_HTTP names (0.0.0.0 is asked on 127.0.0.1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; h, _, p = os.environ.get('REVIEWD_HTTP', '127.0.0.1:9120').rpartition(':'); h = '127.0.0.1' if h in ('', '0.0.0.0', '[::]') else h.strip('[]'); sys.exit(0 if urllib.request.urlopen(f'http://{h}:{p}/healthz', timeout=4).status == 200 else 1)"]

# SIGTERM drains in-flight handlers (daemon.grace_period); give `docker stop -t` more time.
STOPSIGNAL SIGTERM
# Exec form: reviewd runs as PID 1 and handles SIGTERM itself (no shell in between).
# Run with `docker run --init` when plugins start subprocesses, so zombies are reaped.
ENTRYPOINT ["reviewd"]
CMD []
