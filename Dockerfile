# The enrollment service for production: `python -m service serve`.
#
# The code runs from a copy of the source tree in /app, not from an installed
# package: service/sql.py and service/migrations.py find sql/ and migrations/
# beside service/, so all three are copied there side by side.
#
#   docker build -t enrollment-service .
#   docker compose up -d --build        (see docker-compose.yml)

# Pinned by digest: a tag moves whenever the image is rebuilt, a digest
# never, so every build starts from the same bytes; the tag stays to say
# which line it follows. It is the digest of the multi-platform index, so
# amd64 and arm64 hosts both resolve it. To bump it (the base image's
# security fixes), read the digest the tag points to now, with either
#   docker buildx imagetools inspect python:3.12-slim     (its "Digest:" line)
#   docker pull python:3.12-slim && docker inspect --format '{{index .RepoDigests 0}}' python:3.12-slim
# put it in place of the sha256 below, rebuild and run the tests.
FROM python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# Dependencies first, from the lock file alone: this layer is rebuilt when
# the locked versions change, not on every change to the code. Every file is
# checked against its hash (make lock writes requirements/serve.txt from
# pyproject.toml); every dependency ships wheels for this platform, so no
# compiler is needed.
COPY requirements/serve.txt ./requirements.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.txt \
    && rm requirements.txt

# A fixed numeric id, so orchestrators can check runAsNonRoot and a secret
# file on the host can be given to it (chown 10001).
RUN groupadd --system --gid 10001 enrollment \
    && useradd --system --uid 10001 --gid enrollment --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin enrollment

# The code stays owned by root: the service can read it, not change it.
# Bytecode is compiled now because the running user cannot write it.
COPY service ./service
COPY sql ./sql
COPY migrations ./migrations
RUN python -m compileall -q service

ENV HOST=0.0.0.0 \
    PORT=8080 \
    PYTHONPATH=/app

USER 10001:10001
EXPOSE 8080

# The server stops accepting on SIGTERM, lets in-flight requests finish for up
# to SHUTDOWN_TIMEOUT (10 s), then closes its pool; give it longer than that.
STOPSIGNAL SIGTERM

# slim has no curl: ask /healthz with the standard library. urlopen raises on
# a refused connection, a time-out or any status >= 400, and python exits 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

CMD ["python", "-m", "service", "serve"]
