"""docker-compose.yml, the Dockerfile and deploy/ checked by structure (no Docker engine on these machines),
and the image's Python requirements checked by installing the same ones here."""

import importlib.metadata
import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from forex_assets.core.working_area import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
INSTANCE = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
WORKSPACE = yaml.safe_load((PROJECT_ROOT / "deploy" / "workspace.yaml").read_text())
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
DAGSTER_SERVICES = ("forex_user_code", "forex_webserver", "forex_daemon")
# what must outlive a container: the mount path of each piece of state
STATE_MOUNTS = {
    "forex_state": "/opt/dagster/state",  # forecast history, decisions, alerts, reports
    "forex_config_store": "/opt/dagster/config_store",
    "forex_cache": "/opt/dagster/cache",  # backtest forecast cache, Optuna journal
    "forex_models": "/opt/dagster/models",  # Hugging Face model cache
    "forex_logs": "/opt/dagster/logs",  # compute logs
    "forex_io": "/opt/dagster/home/storage",  # asset values passed between run containers
}


def _mounts(volumes) -> dict[str, str]:
    return dict(v.split(":", 1) for v in volumes if not v.startswith("/"))


def test_compose_has_the_four_services_with_health_checks():
    assert set(SERVICES) == {"forex_postgres", *DAGSTER_SERVICES}
    for name, service in SERVICES.items():
        assert service["healthcheck"]["test"], name
        assert service["networks"] == ["forex_assets"], name
        assert service.get("restart") == "unless-stopped", name
    assert SERVICES["forex_postgres"]["image"].startswith("postgres:15")
    assert _mounts(SERVICES["forex_postgres"]["volumes"]) == {"forex_postgres": "/var/lib/postgresql/data"}
    for name in ("forex_webserver", "forex_daemon", "forex_user_code"):
        assert SERVICES[name]["depends_on"]["forex_postgres"]["condition"] == "service_healthy"


def test_user_code_server_is_built_here_and_serves_the_code_location_the_workspace_names():
    code = SERVICES["forex_user_code"]
    assert code["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert (PROJECT_ROOT / code["build"]["dockerfile"]).exists()
    [location] = WORKSPACE["load_from"]
    assert location["grpc_server"]["host"] == "forex_user_code"
    command = re.search(r"CMD \[(.*)\]", DOCKERFILE).group(1)
    assert '"code-server", "start"' in command and '"-m", "forex_assets.definitions"' in command
    assert f'"-p", "{location["grpc_server"]["port"]}"' in command
    # every run is launched from this image
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == code["image"]
    for name in ("forex_webserver", "forex_daemon"):
        assert SERVICES[name]["image"] == code["image"]
        assert "/opt/dagster/home/workspace.yaml" in SERVICES[name]["command"]


def test_webserver_binds_to_loopback_by_default_and_only_the_daemon_gets_the_docker_socket():
    [binding] = SERVICES["forex_webserver"]["ports"]
    host = re.fullmatch(r"\$\{FOREX_UI_BIND:-([^}]+)\}:3000:3000", binding)
    assert host and host.group(1) == "127.0.0.1"
    assert all("ports" not in SERVICES[name] for name in SERVICES if name != "forex_webserver")
    sockets = [n for n, s in SERVICES.items() if "/var/run/docker.sock:/var/run/docker.sock" in s.get("volumes", [])]
    assert sockets == ["forex_daemon"]


def test_state_volumes_are_mounted_alike_in_services_and_in_launched_run_containers():
    launcher = INSTANCE["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    run_mounts = _mounts(launcher["config"]["container_kwargs"]["volumes"])
    assert run_mounts == STATE_MOUNTS
    for name in DAGSTER_SERVICES:
        assert _mounts(SERVICES[name]["volumes"]) == STATE_MOUNTS, name
    declared = COMPOSE["volumes"]
    assert set(declared) == {*STATE_MOUNTS, "forex_postgres"}
    assert all(spec["name"] == name for name, spec in declared.items())  # fixed names the launcher can use
    assert COMPOSE["networks"]["forex_assets"]["name"] == launcher["config"]["network"]
    environment = SERVICES["forex_user_code"]["environment"]
    assert environment["FOREX_ASSETS_HOME"] == STATE_MOUNTS["forex_state"]
    assert environment["FOREX_CONFIG_STORE_DIR"] == STATE_MOUNTS["forex_config_store"]
    assert environment["FOREX_CACHE_DIR"] == STATE_MOUNTS["forex_cache"]
    assert environment["HF_HOME"] == STATE_MOUNTS["forex_models"]
    assert INSTANCE["compute_logs"]["config"]["base_dir"] == STATE_MOUNTS["forex_logs"]
    # every variable a run container needs is handed on by name
    assert set(launcher["config"]["env_vars"]) >= {k for k in environment if k != "DAGSTER_CURRENT_IMAGE"}


def test_run_containers_have_a_1_gb_memory_limit():
    kwargs = INSTANCE["run_launcher"]["config"]["container_kwargs"]
    assert kwargs["mem_limit"] == "1g" and kwargs["memswap_limit"] == "1g"


def test_no_secret_in_the_files():
    for path in ("docker-compose.yml", "deploy/dagster.yaml", "Dockerfile", "deploy/workspace.yaml"):
        text = (PROJECT_ROOT / path).read_text()
        for line in text.splitlines():
            if re.search(r"PASSWORD\s*[:=]", line) and "PASSWORD:" in line.split("#")[0]:
                value = line.split(":", 1)[1].strip()
                assert value == "" or value.startswith("${") or value.startswith("{"), f"{path}: {line}"
    environment = SERVICES["forex_user_code"]["environment"]
    assert environment["DAGSTER_POSTGRES_PASSWORD"].startswith("${DAGSTER_POSTGRES_PASSWORD:?")
    assert INSTANCE["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_POSTGRES_PASSWORD"}
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()
    assert ".env" in (PROJECT_ROOT / ".dockerignore").read_text().split()


def test_dockerfile_installs_cpu_torch_first_then_the_project_with_its_production_extra():
    lock = DOCKERFILE.index("COPY requirements.lock ./")
    torch = DOCKERFILE.index("RUN pip install -c requirements.lock --index-url https://download.pytorch.org/whl/cpu")
    project = DOCKERFILE.index("RUN pip install -c requirements.lock -e '.[production]'")
    assert lock < torch < project  # every version from the lock, as `make venv` installs them
    [pinned] = re.findall(r"^torch==(\S+)$", (PROJECT_ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert f"torch=={pinned}+cpu" in DOCKERFILE[torch:project]  # the lock's torch, its CPU build
    assert "COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/" in DOCKERFILE
    assert "HF_HUB_OFFLINE=1" in DOCKERFILE and "DAGSTER_HOME=/opt/dagster/home" in DOCKERFILE


def _image_requirements() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["production"]]


@pytest.mark.parametrize("requirement", _image_requirements(), ids=str)
def test_the_image_requirements_install_together_here(requirement):
    """`make test` installs `.[dev,production]`: the image's `.[production]` resolved on this machine."""
    installed = importlib.metadata.version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), f"{requirement}: {installed} installed"


def test_helm_values_run_the_same_image_and_code_location_with_the_same_limits():
    values = yaml.safe_load((PROJECT_ROOT / "deploy" / "helm-values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "forex_assets.definitions"]
    [location] = WORKSPACE["load_from"]
    assert deployment["port"] == location["grpc_server"]["port"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    environment = {e["name"]: e["value"] for e in deployment["env"]}
    mounts = [m["mountPath"] for m in deployment["volumeMounts"]]
    for name in ("FOREX_ASSETS_HOME", "FOREX_CONFIG_STORE_REMOTE", "FOREX_CACHE_DIR", "HF_HOME"):
        assert any(environment[name].startswith(m) for m in mounts), name  # what outlives pods: on the claim
    # the config store's clone is each pod's own (pods on different hosts): only its bare remote is shared
    assert not any(environment["FOREX_CONFIG_STORE_DIR"].startswith(m) for m in mounts)
    # the project's tables are in the chart's PostgreSQL (user and database of `postgresql`), never a file
    database = values["postgresql"]
    assert environment["FOREX_STATE_DATABASE_URL"].startswith("postgresql")
    assert environment["FOREX_STATE_DATABASE_URL"].endswith(
        f"://{database['postgresqlUsername']}@forex-postgresql:5432/{database['postgresqlDatabase']}"
    )
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    limits = launcher["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]["limits"]
    assert limits["memory"] == "1Gi"
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["tagConcurrencyLimits"] == INSTANCE["concurrency"]["runs"]["tag_concurrency_limits"]
    assert values["generatePostgresqlPasswordSecret"] is False and "postgresqlPassword" not in values["postgresql"]
