"""The compose loader against the real stack file and against broken variants of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from devenv.config.compose import load_project, resolve_environment
from devenv.config.defaults import packaged_root
from devenv.errors import ConfigError, MissingSecretError
from devenv.graph import find_cycle, topological_order
from devenv.model import Dependency, PortSpec, ProbeSpec, Project, StandIn, VolumeMount

REPO = Path(__file__).resolve().parents[2]
WriteTree = Callable[[Mapping[str, str]], Path]
REAL_TEXT = (REPO / "compose" / "compose.yaml").read_text(encoding="utf-8")
FILE = "compose/compose.yaml"

MINIMAL = """\
services:
  db:
    image: postgres:15
    ports: ["127.0.0.1:5432:5432"]
    volumes: ["data:/var/lib/postgresql/data"]
    x-devenv: {probe: {kind: postgres}}
  app:
    image: app:dev
    depends_on: [db]
    x-devenv: {probe: {kind: http, path: /health}}
volumes:
  data: {}
"""


def load(root: Path, variables: dict[str, str] | None = None) -> Project:
    return load_project(root, project_name="ignition", variables=variables or {})


def load_text(write_tree: WriteTree, text: str) -> Project:
    return load(write_tree({FILE: text}))


def config_error(write_tree: WriteTree, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_text(write_tree, text)
    line = caught.value.one_line()
    assert "\n" not in line, line
    assert FILE in line, line
    return caught.value


# --- the real file --------------------------------------------------------------------------


def test_real_compose_file_loads_three_services_in_dependency_order() -> None:
    project = load(REPO)
    assert [s.name for s in project.services] == ["postgres", "objectstore", "backend"]
    assert project.volumes == ("pgdata", "s3data")
    assert project.compose_file == REPO / "compose" / "compose.yaml"


def test_real_compose_postgres_and_objectstore() -> None:
    project = load(REPO)
    pg = project.service("postgres")
    assert pg.ports == (PortSpec(container_port=5432, preferred_host_port=5432),)
    assert pg.volumes == (VolumeMount("pgdata", "/var/lib/postgresql/data"),)
    assert pg.probe == ProbeSpec(kind="postgres")
    assert pg.standin == StandIn("devenv-standin/postgres:15", "postgres")
    assert pg.environment["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-ignition}"
    assert pg.port_env == "POSTGRES_PORT"
    assert resolve_environment(project, pg, {})["POSTGRES_PASSWORD"] == "ignition"
    store = project.service("objectstore")
    assert store.ports == (PortSpec(9000, 9000),)
    assert store.command == ("server", "/data", "--console-address", ":9001")
    assert store.volumes == (VolumeMount("s3data", "/data"),)
    assert store.probe.kind == "s3"
    assert store.port_env == "OBJECTSTORE_PORT"


def test_real_compose_backend_uses_host_network_and_preferred_port() -> None:
    project = load(REPO)
    backend = project.service("backend")
    assert backend.network_mode == "host"
    assert backend.ports == ()
    assert backend.preferred_port == 8080
    assert backend.host_port == 8080
    assert backend.port_env == "BACKEND_PORT"
    assert backend.probe == ProbeSpec(kind="http", path="/health")
    assert backend.depends_on == (
        Dependency("postgres", "healthy"),
        Dependency("objectstore", "healthy"),
    )
    assert backend.build_context == REPO / "backend"
    env = resolve_environment(project, backend, {})
    assert env["SERVER_PUBLIC_URL"] == "http://localhost:8080"


def test_ports_read_the_file_s_variables_and_environment_templates_the_stack_s() -> None:
    """Published ports are preferences read when the file is read; the environment is
    interpolated later, with the ports devenv chose and the endpoints it made."""
    project = load(REPO, {"POSTGRES_PORT": "15432"})
    assert project.service("postgres").ports == (PortSpec(5432, 15432),)
    backend = project.service("backend")
    env = resolve_environment(project, backend, {"BACKEND_PORT": "18080"})
    assert env["SERVER_PORT"] == "18080"
    assert env["SERVER_PUBLIC_URL"] == "http://localhost:18080"


def test_a_missing_variable_in_the_environment_names_file_and_key(
    write_tree: WriteTree,
) -> None:
    text = MINIMAL.replace(
        "    depends_on: [db]\n", "    depends_on: [db]\n    environment: {K: '${NOPE:?set it}'}\n"
    )
    root = write_tree({FILE: text})
    project = load(root)
    with pytest.raises(MissingSecretError) as caught:
        resolve_environment(project, project.service("app"), {})
    assert caught.value.one_line().startswith(
        "Missing secret: compose/compose.yaml: services → app → environment → K: variable NOPE"
    )


# --- supported syntax -----------------------------------------------------------------------


def test_port_syntaxes(write_tree: WriteTree) -> None:
    text = MINIMAL.replace(
        'ports: ["127.0.0.1:5432:5432"]',
        'ports: ["5432", "8080:80", 6000, "127.0.0.1::7000", "9000/tcp",'
        " {target: 1234, published: '${P:-4321}', host_ip: 127.0.0.1}, {target: 99}]",
    )
    ports = load_text(write_tree, text).service("db").ports
    assert ports == (
        PortSpec(5432, 5432),
        PortSpec(80, 8080),
        PortSpec(6000, 6000),
        PortSpec(7000, 7000),
        PortSpec(9000, 9000),
        PortSpec(1234, 4321),
        PortSpec(99, 99),
    )


def test_environment_list_command_string_and_build_string(write_tree: WriteTree) -> None:
    text = MINIMAL.replace(
        "    image: app:dev\n",
        "    build: ./app\n"
        "    environment: [A=1, B=x=y, PASSED]\n"
        "    command: run --flag 'two words'\n"
        "    user: 1000\n",
    )
    root = write_tree({FILE: text})
    project = load(root)
    app = project.service("app")
    assert app.environment == {"A": "1", "B": "x=y", "PASSED": None}
    resolved = resolve_environment(project, app, {"PASSED": "through"})
    assert resolved == {"A": "1", "B": "x=y", "PASSED": "through"}
    assert "PASSED" not in resolve_environment(project, app, {})
    assert app.command == ("run", "--flag", "two words")
    assert app.build_context == root / "compose" / "app"
    assert app.image == "ignition-app"  # compose's name for a build without image
    assert app.user == "1000"


def test_depends_on_mapping_and_x_keys_are_accepted(write_tree: WriteTree) -> None:
    text = "x-common: &common {anything: [1, 2]}\n" + MINIMAL.replace(
        "depends_on: [db]",
        "depends_on: {db: {condition: service_healthy}}\n    x-other: ignored",
    )
    app = load_text(write_tree, text).service("app")
    assert app.depends_on == (Dependency("db", "healthy"),)
    listed = load_text(write_tree, MINIMAL).service("app")
    assert listed.depends_on == (Dependency("db", "started"),)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("depends_on: {db: {condition: service_completed_successfully}}", "no one-shot"),
        ("depends_on: {db: {restart: true}}", "restart: this Compose key is not supported"),
        ("depends_on: {db: {required: false}}", "required: unknown key"),
        ("healthcheck: {test: [CMD, true]}", "x-devenv → probe"),
    ],
)
def test_compose_keys_devenv_would_ignore_are_refused(
    write_tree: WriteTree, new: str, expected: str
) -> None:
    error = config_error(write_tree, MINIMAL.replace("depends_on: [db]", new))
    assert expected in str(error) + (error.hint or "")


def test_topological_order_is_stable_and_dependencies_first() -> None:
    graph = {"web": ["api"], "api": ["db", "cache"], "db": [], "cache": [], "lone": []}
    assert topological_order(graph) == ["db", "cache", "api", "web", "lone"]
    assert find_cycle(graph) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    with pytest.raises(ValueError, match="dependency cycle: a → b → a"):
        topological_order({"a": ["b"], "b": ["a"]})


# --- errors: one line, file, key path ---------------------------------------------------------


def test_unknown_key_names_key_path_and_suggests(write_tree: WriteTree) -> None:
    old = "    environment:\n      SERVER_HOST"
    text = REAL_TEXT.replace(old, old.replace("environment", "enviroment"))
    error = config_error(write_tree, text)
    assert "services → backend → enviroment" in str(error)
    assert "did you mean `environment`?" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("probe: {kind: s3}", "probe: {kind: postgress}", "did you mean `postgres`?"),
        ("probe: {kind: s3}", "probe: {knd: s3}", "did you mean `kind`?"),
        ("image: ignition-api:dev", "image: x\n    restart: always", "not supported"),
        ("postgres:\n        condition", "postgress:\n        condition", "`postgres`?"),
    ],
)
def test_did_you_mean(write_tree: WriteTree, old: str, new: str, expected: str) -> None:
    assert old in REAL_TEXT
    error = config_error(write_tree, REAL_TEXT.replace(old, new, 1))
    assert expected in error.one_line()


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        (
            'ports: ["127.0.0.1:5432:5432"]',
            "ports: {a: 1}",
            "services → db → ports",
            "expected a list, got a mapping",
        ),
        ("image: postgres:15", "image: [x]", "services → db → image", "expected a string"),
        (
            'ports: ["127.0.0.1:5432:5432"]',
            'ports: ["127.0.0.1:70000:5432"]',
            "services → db → ports[0]",
            "out of range",
        ),
        (
            'ports: ["127.0.0.1:5432:5432"]',
            'ports: ["127.0.0.1:abc:5432"]',
            "services → db → ports[0]",
            "port number",
        ),
        (
            'ports: ["127.0.0.1:5432:5432"]',
            "ports: [{target: true}]",
            "services → db → ports[0] → target",
            "port number",
        ),
        (
            'ports: ["127.0.0.1:5432:5432"]',
            'ports: ["0.0.0.0:5432:5432"]',
            "services → db → ports[0]",
            "loopback",
        ),
        (
            'ports: ["127.0.0.1:5432:5432"]',
            "ports: [{target: 5432, host_ip: 192.168.1.4}]",
            "services → db → ports[0] → host_ip",
            "loopback",
        ),
        (
            'ports: ["127.0.0.1:5432:5432"]',
            'ports: ["5432:5432/udp"]',
            "services → db → ports[0]",
            "only tcp",
        ),
        (
            'volumes: ["data:/var/lib/postgresql/data"]',
            'volumes: ["./data:/var/lib/postgresql/data"]',
            "services → db → volumes[0]",
            "bind mounts are not supported",
        ),
        (
            'volumes: ["data:/var/lib/postgresql/data"]',
            "volumes: [{type: bind, source: /srv, target: /data}]",
            "services → db → volumes[0]",
            "bind mounts are not supported",
        ),
        (
            'volumes: ["data:/var/lib/postgresql/data"]',
            'volumes: ["other:/var/lib/postgresql/data"]',
            "services → db → volumes[0]",
            "not declared",
        ),
        ("depends_on: [db]", "depends_on: [dbx]", "services → app → depends_on[0]", "`db`?"),
        (
            "x-devenv: {probe: {kind: postgres}}",
            "x-devenv: {probe: {kind: http, path: health}}",
            "services → db → x-devenv → probe → path",
            "must start with /",
        ),
        (
            "x-devenv: {probe: {kind: postgres}}",
            "x-devenv: {standin: {image: x}, probe: {kind: postgres}}",
            "services → db → x-devenv → standin",
            "missing `recipe`",
        ),
        (
            "    x-devenv: {probe: {kind: postgres}}\n",
            "",
            "services → db",
            "probe",
        ),
        ("image: app:dev", "image: ${APP_IMAGE:?set the image}", "services → app → image", "APP"),
    ],
)
def test_errors_name_file_and_key_path(
    write_tree: WriteTree, old: str, new: str, key: str, expected: str
) -> None:
    assert old in MINIMAL
    error = config_error(write_tree, MINIMAL.replace(old, new, 1))
    assert f"{FILE}: {key}: " in error.one_line()
    assert expected in error.one_line()


def test_missing_required_variable_is_a_missing_secret_error(write_tree: WriteTree) -> None:
    error = config_error(write_tree, MINIMAL.replace("image: app:dev", "image: ${IMG:?needed}"))
    assert isinstance(error, MissingSecretError)
    assert "IMG" in error.one_line()


def test_dependency_cycle_shows_the_chain(write_tree: WriteTree) -> None:
    text = MINIMAL.replace(
        "x-devenv: {probe: {kind: postgres}}",
        "depends_on: [app]\n    x-devenv: {probe: {kind: postgres}}",
    )
    error = config_error(write_tree, text)
    assert "dependency cycle: db → app → db" in error.one_line()


def test_host_network_with_ports_is_refused(write_tree: WriteTree) -> None:
    text = MINIMAL.replace("image: postgres:15", "image: postgres:15\n    network_mode: host")
    assert "network_mode: host" in config_error(write_tree, text).one_line()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("- a\n- b\n", "expected a mapping, got a list"),
        ("services:\n  db: {image: [\n", "line "),
        ("services: {}\nservices: {}\n", "duplicate key"),
        ("volumes: {}\n", "missing `services`"),
        ("services:\n  db:\n\timage: x\n", "line 3"),
    ],
)
def test_file_level_errors(write_tree: WriteTree, text: str, expected: str) -> None:
    assert expected in config_error(write_tree, text).one_line()


def test_missing_compose_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_project(
            tmp_path, project_name="p", variables={}, compose_file=Path("compose/none.yaml")
        )


def test_a_project_without_a_compose_file_gets_the_packaged_one(tmp_path: Path) -> None:
    project = load(tmp_path)
    assert project.compose_file == packaged_root() / "compose" / "compose.yaml"
    assert [s.name for s in project.services] == ["postgres", "objectstore", "backend"]
    (tmp_path / "compose").mkdir()
    (tmp_path / "compose" / "compose.yaml").write_text(
        (REPO / "compose" / "compose.yaml").read_text()
    )
    assert load(tmp_path).compose_file == tmp_path / "compose" / "compose.yaml"


def test_invalid_project_name() -> None:
    with pytest.raises(ConfigError, match="project name"):
        load_project(REPO, project_name="Bad Name", variables={})


def test_the_stack_file_is_a_valid_compose_file() -> None:
    """x-devenv keys stay in extension fields, so Compose itself accepts the file."""
    import shutil
    import subprocess

    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed")
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [tool, "-f", str(repo / "compose" / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
