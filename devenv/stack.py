"""One run's concrete values, pure: credentials and host ports -> endpoints and environments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devenv.config.compose import resolve_environment
from devenv.config.load import Config
from devenv.model import LOOPBACK, Profile, Project, S3Target

DEFAULT_BUCKET = "ignition"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Endpoints:
    """How a client on the host (and the host-network backend) reaches each service."""

    database_url: str
    storage: S3Target
    backend_url: str


@dataclass(frozen=True)
class Stack:
    """One run's configuration with its credentials, host ports and the endpoints they make."""

    config: Config
    credentials: Mapping[str, str]  # the state file's names (postgres_password, ...)
    ports: Mapping[str, int]  # service -> host port, local services only
    endpoints: Endpoints

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def profile(self) -> Profile:
        return self.config.profile

    @property
    def project(self) -> Project:
        return self.config.project

    def local(self, service: str) -> bool:
        return self.config.local(service)

    def protected(self, service: str) -> bool:
        return self.config.protected(service)

    def secrets(self) -> list[str]:
        """Every value no output may show: credentials, the profile's secrets, the DB URL."""
        found = [v for v in self.credentials.values() if v]
        found += [v for v in self._credential_variables().values() if v]
        found += list(self.profile.secrets())
        found.append(self.endpoints.database_url)
        return found

    def url(self, service: str) -> str:
        """Where a client on the host reaches `service` (unmasked)."""
        if service == "postgres":
            return self.endpoints.database_url
        if service == "objectstore":
            return f"{self.endpoints.storage.endpoint.rstrip('/')}/{self.endpoints.storage.bucket}"
        return self.endpoints.backend_url

    def environment(self, service: str) -> dict[str, str]:
        """The container environment of a local service: compose's templates resolved with
        the stack's variables, and (backend) the profile's extra environment."""
        from devenv.config.profiles import backend_env

        env = resolve_environment(self.project, self.project.service(service), self._variables())
        if service == "backend":
            env.update(backend_env(self.profile))
        return env

    def _credential_variables(self) -> dict[str, str]:
        return credential_variables(self.credentials)

    def _variables(self) -> dict[str, str]:
        storage = self.endpoints.storage
        variables = dict(self.config.options.environ)
        variables.update(self._credential_variables())
        for svc in self.project.services:
            port = self.ports.get(svc.name, svc.host_port)
            if port is not None:
                variables[svc.port_env] = str(port)
        variables.update(
            DATABASE_URL=self.endpoints.database_url,
            STORAGE_ENDPOINT=storage.endpoint,
            STORAGE_BUCKET=storage.bucket,
            STORAGE_REGION=storage.region,
            STORAGE_ACCESS_KEY_ID=storage.access_key,
            STORAGE_SECRET_ACCESS_KEY=storage.secret_key,
            AUTH_DEV_BYPASS="true" if self.profile.dev_bypass else "false",
        )
        return variables


def credential_variables(credentials: Mapping[str, str]) -> dict[str, str]:
    """The variables the compose file reads the generated credentials from."""
    access = credentials.get("storage_access_key", "")
    return {
        "POSTGRES_PASSWORD": credentials.get("postgres_password", ""),
        "STORAGE_ACCESS_KEY_ID": f"devenv{access}" if access else "",
        "STORAGE_SECRET_ACCESS_KEY": credentials.get("storage_secret_key", ""),
    }


def resolve(config: Config, credentials: Mapping[str, str], ports: Mapping[str, int]) -> Stack:
    """Pure: the endpoints each service has with these credentials and host ports."""
    profile = config.profile

    def port(service: str, default: int) -> int:
        if service in ports:
            return ports[service]
        found = config.service(service).host_port if config.has(service) else None
        return found or default

    pg = profile.binding("postgres")
    if pg.provider == "external":
        database_url = pg.settings["url"]
    else:
        base = dict(config.options.environ)
        base.update(credential_variables(credentials))
        env = (
            resolve_environment(config.project, config.service("postgres"), base)
            if config.has("postgres")
            else {}
        )
        user = env.get("POSTGRES_USER", "postgres")
        db = env.get("POSTGRES_DB", user)
        password = credentials.get("postgres_password", "")
        database_url = f"postgres://{user}:{password}@{LOOPBACK}:{port('postgres', 5432)}/{db}"
    store = profile.binding("objectstore")
    if store.provider == "external":
        storage = S3Target(
            endpoint=store.settings["endpoint"],
            bucket=store.settings["bucket"],
            region=store.settings.get("region", "auto"),
            access_key=store.settings["access_key_id"],
            secret_key=store.settings["secret_access_key"],
        )
    else:
        keys = credential_variables(credentials)
        storage = S3Target(
            endpoint=f"http://{LOOPBACK}:{port('objectstore', 9000)}",
            bucket=store.settings.get("bucket") or DEFAULT_BUCKET,
            region=store.settings.get("region") or DEFAULT_REGION,
            access_key=keys["STORAGE_ACCESS_KEY_ID"],
            secret_key=keys["STORAGE_SECRET_ACCESS_KEY"],
        )
    be = profile.binding("backend")
    backend_url = (
        be.settings["url"].rstrip("/")
        if be.provider == "external"
        else f"http://{LOOPBACK}:{port('backend', 8080)}"
    )
    local_ports = {s: p for s, p in ports.items() if config.has(s) and config.local(s)}
    endpoints = Endpoints(database_url=database_url, storage=storage, backend_url=backend_url)
    return Stack(config, credentials, local_ports, endpoints)
