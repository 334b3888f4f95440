# LLM gateway container image.
#   docker build -t llm-gateway .
#   docker run -p 8080:8080 --env-file .env llm-gateway
# Without provider keys the embedded default config serves its models from the
# built-in simulated provider, so the image is useful out of the box.

# --- build: turn the source tree into a wheel, its request path compiled -----
# LLM_GATEWAY_COMPILE=1 compiles the hot modules with mypyc (setup.py), about
# 50 µs less CPU per request (docs/performance.md); the compiler stays in this
# stage. Build with --build-arg LLM_GATEWAY_COMPILE=0 for a pure-Python image.
FROM python:3.11-slim AS build
ARG LLM_GATEWAY_COMPILE=1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 LLM_GATEWAY_COMPILE=${LLM_GATEWAY_COMPILE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY build_support ./build_support
COPY gateway ./gateway
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime -----------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies come from pyproject.toml through the wheel's metadata.
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

# Unprivileged user. Its only writable path is the data directory, where the
# default config keeps the SQLite ledger (mount a volume there to keep it).
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
    && mkdir -p /var/lib/llm-gateway \
    && chown gateway:gateway /var/lib/llm-gateway
ENV GATEWAY_SQLITE_PATH=/var/lib/llm-gateway/gateway.sqlite3
USER gateway:gateway
WORKDIR /var/lib/llm-gateway

EXPOSE 8080

# The slim image has no curl: ask /health with the standard library.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["llm-gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
