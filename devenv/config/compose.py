"""Read compose/compose.yaml (the supported subset) into a frozen, interpolated Project."""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, cast

import yaml

from devenv.config import defaults
from devenv.config.interpolate import NAME, interpolate, one_line
from devenv.errors import ConfigError
from devenv.graph import find_cycle, topological_order
from devenv.model import (
    LOOPBACK,
    PULL_POLICIES,
    Condition,
    Dependency,
    PortSpec,
    ProbeKind,
    ProbeSpec,
    Project,
    PullPolicy,
    ServiceSpec,
    StandIn,
    VolumeMount,
)

PROBE_KINDS = ("postgres", "s3", "http")
RECIPES = ("postgres", "objectstore", "backend")

TOP_KEYS = ("services", "volumes")
SERVICE_KEYS = (
    "image", "build", "command", "environment", "ports", "volumes", "depends_on",
    "network_mode", "user", "pull_policy", "x-devenv",
)  # fmt: skip
# Real Compose keys outside devenv's subset get a clearer message than "unknown key".
COMPOSE_ONLY_KEYS = frozenset((
    "name", "version", "networks", "configs", "secrets", "include", "restart", "container_name",
    "labels", "entrypoint", "env_file", "expose", "extra_hosts", "working_dir", "profiles",
    "deploy", "logging", "cap_add", "cap_drop", "privileged", "platform", "tmpfs",
    "ulimits", "stop_grace_period", "stop_signal", "hostname", "init", "links", "extends",
    "develop", "shm_size", "stdin_open", "tty", "dns", "devices", "security_opt", "sysctls",
    "volumes_from", "ipc", "pid", "read_only", "mem_limit", "cpus", "args", "target",
    "cache_from", "driver", "driver_opts", "external", "healthcheck",
))  # fmt: skip
# What devenv does instead of a Compose key it does not support, when that is worth saying.
INSTEAD = {"healthcheck": "devenv probes readiness from the host: set `x-devenv → probe`"}
BUILD_KEYS = ("context", "dockerfile")
PORT_KEYS = ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol")
VOLUME_KEYS = ("type", "source", "target", "read_only")
DEPENDS_KEYS = ("condition",)
# compose's conditions as devenv honours them; devenv runs no one-shot services, so
# service_completed_successfully has nothing to wait for
CONDITIONS: dict[str, Condition] = {"service_started": "started", "service_healthy": "healthy"}
XDEVENV_KEYS = ("standin", "probe", "port", "port_env")
STANDIN_KEYS = ("image", "recipe")
PROBE_KEYS = ("kind", "path")

_SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_DIGITS = re.compile(r"[0-9]{1,6}")

KeyPath = tuple[str, ...]


def key_path(path: KeyPath) -> str:
    """``("services", "db", "ports", "[0]")`` → ``services → db → ports[0]``."""
    parts: list[str] = []
    for part in path:
        if part.startswith("[") and parts:
            parts[-1] += part
        else:
            parts.append(part)
    return " → ".join(parts)


def did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
    (list, "a list"), (dict, "a mapping"), (type(None), "null"),
)  # fmt: skip


def describe_type(value: object) -> str:
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def display_path(path: Path, root: Path) -> str:
    """A path as messages show it: relative to the project, or devenv's packaged copy."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    try:
        return f"{path.resolve().relative_to(defaults.packaged_root()).as_posix()} (packaged)"
    except ValueError:
        return str(path)


# --- YAML: duplicate keys are errors, dates stay strings -----------------------------------


try:  # libyaml's parser when PyYAML was built with it: a no-op `up` parses compose.yaml
    from yaml import CSafeLoader as _SafeBase
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _SafeBase  # type: ignore[assignment]


class _Loader(_SafeBase):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable: construct_mapping reports it with a position
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {one_line(str(key))}",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def parse_yaml(text: str, file: str) -> object:
    """Parse YAML text; every failure becomes a ConfigError with the position when known."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(f"invalid YAML at {where}{problem}", file=file) from exc
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError(f"invalid YAML: {detail}", file=file) from exc


# --- the loader ---------------------------------------------------------------------------


def load_project(
    root: Path,
    *,
    project_name: str,
    variables: Mapping[str, str],
    compose_file: Path | None = None,
) -> Project:
    """Read, interpolate and validate the compose file; services come in dependency order."""
    path = compose_file if compose_file is not None else defaults.compose_file(root)
    if not path.is_absolute():
        path = root / path
    shown = display_path(path, root)
    if not _PROJECT_NAME.fullmatch(project_name):
        raise ConfigError(
            f"invalid project name {one_line(project_name)}",
            hint="use lowercase letters, digits, '-' and '_', starting with a letter or digit",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=shown, hint="run devenv from the project") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=shown) from exc
    reader = _Reader(shown, variables, path.parent)
    return reader.project(parse_yaml(text, shown), project_name, root, path)


class _Reader:
    def __init__(self, file: str, variables: Mapping[str, str], base_dir: Path) -> None:
        self.file = file
        self.variables = variables
        self.base_dir = base_dir

    # -- generic helpers

    def fail(self, path: KeyPath, message: str, hint: str | None = None) -> NoReturn:
        raise ConfigError(message, file=self.file, key=key_path(path) or None, hint=hint)

    def wrong_type(self, path: KeyPath, expected: str, value: object) -> NoReturn:
        self.fail(path, f"expected {expected}, got {describe_type(value)}")

    def mapping(
        self, value: object, path: KeyPath, allowed: Collection[str] | None = None
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.wrong_type(path, "a mapping", value)
        for key in value:
            if not isinstance(key, str):
                shown = one_line(str(key))
                self.fail(path, f"keys must be strings, got {describe_type(key)} {shown}")
            if allowed is not None and key not in allowed and not key.startswith("x-"):
                self.unknown_key((*path, key), key, allowed)
        return cast(dict[str, Any], value)

    def unknown_key(self, path: KeyPath, key: str, allowed: Collection[str]) -> NoReturn:
        if key in COMPOSE_ONLY_KEYS:
            self.fail(
                path,
                "this Compose key is not supported by devenv",
                hint=INSTEAD.get(key, f"supported here: {', '.join(allowed)}"),
            )
        self.fail(path, "unknown key" + did_you_mean(key, allowed))

    def text(self, value: object, path: KeyPath) -> str:
        if not isinstance(value, str):
            self.wrong_type(path, "a string", value)
        return interpolate(value, self.variables, file=self.file, key=key_path(path))

    def scalar(self, value: object, path: KeyPath) -> str:
        """A string, number or boolean, as the string a process would see."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            self.wrong_type(path, "a string, number or boolean", value)
        return self.text(value, path)

    def port(self, value: object, path: KeyPath) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.wrong_type(path, "a port number", value)
        raw = self.text(value, path).strip() if isinstance(value, str) else value
        return self.port_number(raw, path)

    def port_number(self, raw: int | str, path: KeyPath) -> int:
        if isinstance(raw, str):
            if not _DIGITS.fullmatch(raw):
                self.fail(path, f"expected a port number 1..65535, got {one_line(raw)}")
            raw = int(raw)
        if not 1 <= raw <= 65535:
            self.fail(path, f"port {raw} is out of range 1..65535")
        return raw

    def choice(self, value: object, path: KeyPath, choices: tuple[str, ...]) -> str:
        text = self.text(value, path)
        if text not in choices:
            self.fail(
                path,
                f"{one_line(text)} is not one of {', '.join(choices)}"
                + did_you_mean(text, choices),
            )
        return text

    # -- the file

    def project(self, data: object, name: str, root: Path, compose_file: Path) -> Project:
        if data is None:
            self.fail((), "the file is empty; expected a mapping with `services`")
        top = self.mapping(data, (), TOP_KEYS)
        if "services" not in top:
            self.fail((), "missing `services`")
        raw_services = self.mapping(top["services"], ("services",))
        if not raw_services:
            self.fail(("services",), "no services defined")
        volumes = self.top_volumes(top.get("volumes"))
        services: dict[str, ServiceSpec] = {}
        for svc_name, body in raw_services.items():
            if svc_name.startswith("x-"):
                continue
            if not _SERVICE_NAME.fullmatch(svc_name):
                self.fail(
                    ("services", svc_name),
                    "invalid service name",
                    hint="use letters, digits, '.', '-' and '_'",
                )
            services[svc_name] = self.service(svc_name, body, name)
        self.check_references(services, volumes)
        order = topological_order({n: s.needs for n, s in services.items()})
        return Project(
            name=name,
            root=root,
            compose_file=compose_file,
            services=tuple(services[n] for n in order),
            volumes=tuple(sorted(volumes)),
        )

    def top_volumes(self, value: object) -> list[str]:
        if value is None:
            return []
        declared = self.mapping(value, ("volumes",))
        for vol_name, body in declared.items():
            path = ("volumes", vol_name)
            if not _VOLUME_NAME.fullmatch(vol_name):
                self.fail(path, "invalid volume name")
            if body is not None:
                self.mapping(body, path, ())
        return list(declared)

    def check_references(self, services: Mapping[str, ServiceSpec], volumes: list[str]) -> None:
        for svc in services.values():
            for index, dep in enumerate(svc.needs):
                if dep not in services:
                    self.fail(
                        ("services", svc.name, "depends_on", f"[{index}]"),
                        f"unknown service `{dep}`" + did_you_mean(dep, services),
                    )
            for index, mount in enumerate(svc.volumes):
                if mount.volume not in volumes:
                    self.fail(
                        ("services", svc.name, "volumes", f"[{index}]"),
                        f"volume `{mount.volume}` is not declared under the top-level `volumes`",
                        hint=f"add `{mount.volume}: {{}}` under `volumes:`",
                    )
        cycle = find_cycle({n: s.needs for n, s in services.items()})
        if cycle:
            self.fail(
                ("services", cycle[0], "depends_on"),
                f"dependency cycle: {' → '.join(cycle)}",
                hint="remove one of these depends_on entries",
            )

    # -- one service

    def service(self, name: str, body: object, project_name: str) -> ServiceSpec:
        base: KeyPath = ("services", name)
        raw = self.mapping(body, base, SERVICE_KEYS)
        image = self.text(raw["image"], (*base, "image")) if "image" in raw else None
        context = self.build(raw["build"], (*base, "build")) if "build" in raw else None
        if image is None and context is None:
            self.fail(base, "needs `image` or `build`")
        if image is not None and not image.strip():
            self.fail((*base, "image"), "is empty")
        network_mode = self.optional_text(raw, "network_mode", base)
        ports = self.ports(raw.get("ports"), (*base, "ports"))
        extension = self.x_devenv(raw.get("x-devenv"), (*base, "x-devenv"))
        if ports and network_mode == "host":
            self.fail(
                (*base, "ports"),
                "ports cannot be published with network_mode: host",
                hint="remove `ports` and set the port in `x-devenv → port`",
            )
        if extension.port is not None and network_mode != "host":
            self.fail(
                (*base, "x-devenv", "port"),
                "only applies to services with network_mode: host",
                hint="publish the port with `ports` instead",
            )
        user = raw.get("user")
        pull_policy = self.pull_policy(raw.get("pull_policy"), (*base, "pull_policy"))
        if pull_policy == "build" and extension.standin is None and context is None:
            self.fail(
                (*base, "pull_policy"),
                "build: this service has nothing to build",
                hint="add `x-devenv → standin` (a recipe devenv builds), or use missing",
            )
        return ServiceSpec(
            name=name,
            image=image or f"{project_name}-{name}",
            standin=extension.standin,
            build_context=context,
            environment=self.environment(raw.get("environment"), (*base, "environment")),
            command=self.command(raw.get("command"), (*base, "command")),
            ports=ports,
            volumes=self.volumes(raw.get("volumes"), (*base, "volumes")),
            depends_on=self.depends_on(raw.get("depends_on"), (*base, "depends_on")),
            probe=extension.probe,
            network_mode=network_mode,
            user=None if user is None else self.scalar(user, (*base, "user")),
            port_env=extension.port_env or _default_port_env(name),
            preferred_port=extension.port,
            pull_policy=pull_policy,
        )

    def pull_policy(self, value: object, path: KeyPath) -> PullPolicy | None:
        """compose's values; `if_not_present` is its alias of missing. Pulls on a schedule
        (daily, weekly, every_<duration>) need a record of the last pull, which devenv keeps
        nowhere: refused."""
        if value is None:
            return None
        text = self.text(value, path)
        if text == "if_not_present":
            return "missing"
        if text in ("daily", "weekly") or text.startswith("every_"):
            self.fail(
                path,
                f"{one_line(text)}: devenv does not pull on a schedule",
                hint="use always (pull on every `up`) or missing",
            )
        return cast(PullPolicy, self.choice(text, path, PULL_POLICIES))

    def optional_text(self, raw: Mapping[str, Any], key: str, base: KeyPath) -> str | None:
        return None if raw.get(key) is None else self.text(raw[key], (*base, key))

    def build(self, value: object, path: KeyPath) -> Path:
        if isinstance(value, str):
            context = self.text(value, path)
            context_path = path
        else:
            raw = self.mapping(value, path, BUILD_KEYS)
            context_path = (*path, "context")
            context = self.text(raw.get("context", "."), context_path)
            dockerfile = raw.get("dockerfile")
            if dockerfile is not None:
                name = self.text(dockerfile, (*path, "dockerfile"))
                if os.path.normpath(name) != "Dockerfile":
                    self.fail(
                        (*path, "dockerfile"),
                        f"{one_line(name)}: only the default `Dockerfile` is supported",
                        hint="rename the file to Dockerfile in the build context",
                    )
        if not context.strip():
            self.fail(context_path, "is empty")
        if "://" in context or context.startswith("git@"):
            self.fail(context_path, "remote build contexts are not supported")
        return Path(os.path.normpath(self.base_dir / context))

    def command(self, value: object, path: KeyPath) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            text = self.text(value, path)
            try:
                return tuple(shlex.split(text))
            except ValueError as exc:
                self.fail(path, f"cannot split the command: {exc}", hint="check the quotes")
        if not isinstance(value, list):
            self.wrong_type(path, "a list or a string", value)
        return tuple(self.scalar(item, (*path, f"[{i}]")) for i, item in enumerate(value))

    def environment(self, value: object, path: KeyPath) -> dict[str, str | None]:
        """Names and value templates; None passes the caller's variable of that name through.

        The templates are checked for syntax now and interpolated by `resolve_environment`
        once the stack's own variables are known."""
        result: dict[str, str | None] = {}
        if value is None:
            return result
        if isinstance(value, list):
            for i, item in enumerate(value):
                entry = self.template(item, (*path, f"[{i}]"))
                name, sep, val = entry.partition("=")
                self.env_name(name, (*path, f"[{i}]"))
                result[name] = val if sep else None
            return result
        for name, val in self.mapping(value, path).items():
            self.env_name(name, (*path, name))
            if val is None:
                result[name] = None
            elif isinstance(val, str):
                result[name] = self.template(val, (*path, name))
            else:
                result[name] = self.scalar(val, (*path, name))
        return result

    def template(self, value: object, path: KeyPath) -> str:
        if not isinstance(value, str):
            self.wrong_type(path, "a string", value)
        interpolate(value, _ANY_VALUE, file=self.file, key=key_path(path))
        return value

    def env_name(self, name: str, path: KeyPath) -> None:
        if not name or "=" in name or any(c.isspace() for c in name):
            self.fail(path, f"invalid environment variable name {one_line(name)}")

    def ports(self, value: object, path: KeyPath) -> tuple[PortSpec, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.wrong_type(path, "a list", value)
        specs = []
        for i, item in enumerate(value):
            item_path = (*path, f"[{i}]")
            if isinstance(item, dict):
                specs.append(self.long_port(item, item_path))
            elif isinstance(item, int) and not isinstance(item, bool):
                port = self.port_number(item, item_path)
                specs.append(PortSpec(container_port=port, preferred_host_port=port))
            else:
                specs.append(self.short_port(self.text(item, item_path), item_path))
        return tuple(specs)

    def short_port(self, text: str, path: KeyPath) -> PortSpec:
        spec, _, protocol = text.partition("/")
        self.check_protocol(protocol or "tcp", path)
        if spec.startswith("["):
            self.loopback_only(spec.partition("]")[0] + "]", path)
        parts = spec.split(":")
        if len(parts) > 3:
            self.fail(path, f"expected [IP:][HOST:]CONTAINER, got {one_line(text)}")
        ip = parts[0] if len(parts) == 3 else ""
        host = parts[-2] if len(parts) >= 2 else ""
        if ip:
            self.loopback_only(ip, path)
        if "-" in host or "-" in parts[-1]:
            self.fail(path, "port ranges are not supported", hint="publish each port on its own")
        container = self.port_number(parts[-1].strip(), path)
        preferred = self.port_number(host.strip(), path) if host.strip() else container
        return PortSpec(container_port=container, preferred_host_port=preferred)

    def long_port(self, raw_value: dict[Any, Any], path: KeyPath) -> PortSpec:
        raw = self.mapping(raw_value, path, PORT_KEYS)
        if "target" not in raw:
            self.fail(path, "missing `target` (the container port)")
        container = self.port((raw["target"]), (*path, "target"))
        if raw.get("host_ip") is not None:
            self.loopback_only(self.text(raw["host_ip"], (*path, "host_ip")), (*path, "host_ip"))
        if raw.get("protocol") is not None:
            self.check_protocol(self.text(raw["protocol"], (*path, "protocol")), path)
        for key in ("mode", "name", "app_protocol"):
            if raw.get(key) is not None:
                self.text(raw[key], (*path, key))
        published = raw.get("published")
        preferred = container if published is None else self.port(published, (*path, "published"))
        return PortSpec(container_port=container, preferred_host_port=preferred)

    def check_protocol(self, protocol: str, path: KeyPath) -> None:
        if protocol != "tcp":
            self.fail(path, f"protocol {one_line(protocol)} is not supported; only tcp")

    def loopback_only(self, ip: str, path: KeyPath) -> None:
        if ip != LOOPBACK:
            self.fail(
                path,
                f"publishes on {one_line(ip)}; devenv publishes on loopback only, so the "
                "stack is never reachable from the network",
                hint=f'use "{LOOPBACK}:HOST:CONTAINER" or leave the address out',
            )

    def volumes(self, value: object, path: KeyPath) -> tuple[VolumeMount, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.wrong_type(path, "a list", value)
        mounts = []
        for i, item in enumerate(value):
            item_path = (*path, f"[{i}]")
            if isinstance(item, dict):
                mounts.append(self.long_volume(item, item_path))
                continue
            parts = self.text(item, item_path).split(":")
            if len(parts) == 1 or len(parts) > 3:
                self.fail(
                    item_path,
                    f"expected VOLUME:/path, got {one_line(':'.join(parts))}",
                    hint="anonymous volumes are not supported; name the volume",
                )
            if len(parts) == 3 and parts[2] != "rw":
                self.fail(item_path, f"mount option {one_line(parts[2])} is not supported")
            mounts.append(self.mount(parts[0], parts[1], item_path))
        return tuple(mounts)

    def long_volume(self, raw_value: dict[Any, Any], path: KeyPath) -> VolumeMount:
        raw = self.mapping(raw_value, path, VOLUME_KEYS)
        kind = self.text(raw.get("type", "volume"), (*path, "type"))
        if kind == "bind":
            self.bind_mount(path)
        if kind != "volume":
            self.fail((*path, "type"), f"mount type {one_line(kind)} is not supported")
        read_only = raw.get("read_only", False)
        if read_only is not False:
            self.fail((*path, "read_only"), "read-only mounts are not supported")
        for key in ("source", "target"):
            if key not in raw:
                self.fail(path, f"missing `{key}`")
        source = self.text(raw["source"], (*path, "source"))
        return self.mount(source, self.text(raw["target"], (*path, "target")), path)

    def mount(self, source: str, target: str, path: KeyPath) -> VolumeMount:
        if source.startswith((".", "/", "~")) or "/" in source or "\\" in source:
            self.bind_mount(path)
        if not _VOLUME_NAME.fullmatch(source):
            self.fail(path, f"invalid volume name {one_line(source)}")
        if not target.startswith("/"):
            self.fail(path, f"mount target {one_line(target)} must be an absolute path")
        return VolumeMount(volume=source, target=target)

    def bind_mount(self, path: KeyPath) -> NoReturn:
        self.fail(
            path,
            "bind mounts are not supported: host paths make the stack differ per machine",
            hint="use a named volume declared under the top-level `volumes`",
        )

    def depends_on(self, value: object, path: KeyPath) -> tuple[Dependency, ...]:
        if value is None:
            return ()
        found: dict[str, Condition] = {}
        if isinstance(value, list):
            for i, item in enumerate(value):
                found.setdefault(self.text(item, (*path, f"[{i}]")), "started")
        else:
            for dep, body in self.mapping(value, path).items():
                cond = self.mapping(body, (*path, dep), DEPENDS_KEYS)
                condition: Condition = "started"
                if "condition" in cond:
                    key = (*path, dep, "condition")
                    if cond["condition"] == "service_completed_successfully":
                        self.fail(
                            key,
                            "devenv runs no one-shot services, so there is nothing to complete",
                            hint="use service_started or service_healthy",
                        )
                    condition = CONDITIONS[self.choice(cond["condition"], key, tuple(CONDITIONS))]
                found[dep] = condition
        return tuple(Dependency(name, condition) for name, condition in found.items())

    def x_devenv(self, value: object, path: KeyPath) -> _Extension:
        if value is None:
            self.fail(
                path[:-1],
                "missing `x-devenv → probe`: devenv needs to know how to tell it is ready",
                hint="add `x-devenv: {probe: {kind: postgres|s3|http}}`",
            )
        raw = self.mapping(value, path, XDEVENV_KEYS)
        if "probe" not in raw:
            self.fail(path, "missing `probe`", hint="add `probe: {kind: postgres|s3|http}`")
        standin = None
        if raw.get("standin") is not None:
            body = self.mapping(raw["standin"], (*path, "standin"), STANDIN_KEYS)
            for key in STANDIN_KEYS:
                if key not in body:
                    self.fail((*path, "standin"), f"missing `{key}`")
            standin = StandIn(
                image=self.text(body["image"], (*path, "standin", "image")),
                recipe=self.choice(body["recipe"], (*path, "standin", "recipe"), RECIPES),
            )
        port = None if raw.get("port") is None else self.port(raw["port"], (*path, "port"))
        port_env = None
        if raw.get("port_env") is not None:
            port_env = self.text(raw["port_env"], (*path, "port_env"))
            if not NAME.fullmatch(port_env):
                self.fail((*path, "port_env"), f"invalid variable name {one_line(port_env)}")
        return _Extension(standin, self.probe(raw["probe"], (*path, "probe")), port, port_env)

    def probe(self, value: object, path: KeyPath) -> ProbeSpec:
        raw = self.mapping(value, path, PROBE_KEYS)
        if "kind" not in raw:
            self.fail(path, "missing `kind`", hint=f"one of {', '.join(PROBE_KINDS)}")
        kind = cast(ProbeKind, self.choice(raw["kind"], (*path, "kind"), PROBE_KINDS))
        if "path" not in raw:
            return ProbeSpec(kind=kind)
        if kind != "http":
            self.fail((*path, "path"), "only applies to http probes")
        probe_path = self.text(raw["path"], (*path, "path"))
        if not probe_path.startswith("/"):
            self.fail((*path, "path"), f"{one_line(probe_path)} must start with /")
        return ProbeSpec(kind=kind, path=probe_path)


class _AnyValue(Mapping[str, str]):
    """Every variable set (to "x"): checks a template's syntax without its values."""

    def __getitem__(self, key: str) -> str:
        return "x"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_ANY_VALUE = _AnyValue()


def _default_port_env(service: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", service).upper() + "_PORT"


def resolve_environment(
    project: Project, svc: ServiceSpec, variables: Mapping[str, str]
) -> dict[str, str]:
    """The service's environment with every template interpolated from `variables`."""
    file = display_path(project.compose_file, project.root)
    result: dict[str, str] = {}
    for name, template in svc.environment.items():
        if template is None:
            if name in variables:
                result[name] = variables[name]
            continue
        key = key_path(("services", svc.name, "environment", name))
        result[name] = interpolate(template, variables, file=file, key=key)
    return result


class _Extension(NamedTuple):
    standin: StandIn | None
    probe: ProbeSpec
    port: int | None
    port_env: str | None
