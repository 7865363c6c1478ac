# One image for the user-code gRPC server, the webserver, the daemon and every launched run
# (docker-compose.yml). CPU-only PyTorch; the bundled model ships inside the package.
FROM python:3.11-slim-bookworm

# git: the configuration store is a git repository
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    FOREX_ASSETS_HOME=/opt/dagster/state \
    FOREX_CONFIG_STORE_DIR=/opt/dagster/config_store \
    FOREX_CACHE_DIR=/opt/dagster/cache \
    HF_HOME=/opt/dagster/models \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

WORKDIR /opt/forex_assets
# every version the tests passed with (`make lock` writes it), a constraints file as `make venv` uses it
COPY requirements.lock ./
# the CPU build of torch first (the lock's version; its dependencies at the lock's versions, from PyPI), so
# that nothing below pulls a CUDA build
RUN pip install -c requirements.lock --index-url https://download.pytorch.org/whl/cpu \
        --extra-index-url https://pypi.org/simple torch==2.13.0+cpu

COPY pyproject.toml README.md ./
COPY forex_assets ./forex_assets
COPY configs ./configs
# the policy files: FOREX_POLICY_FILE selects one (default policies/default.json)
COPY policies ./policies
# the project with its production extra, every dependency at the version `make test` passed with
RUN pip install -c requirements.lock -e '.[production]'

COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
RUN mkdir -p /opt/dagster/state /opt/dagster/config_store /opt/dagster/cache /opt/dagster/models /opt/dagster/logs

EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD dagster api grpc-health-check -p 4000 || exit 1
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "forex_assets.definitions"]
