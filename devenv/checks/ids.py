"""The check ids every layer shares: service readiness, route contract and scaffold checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devenv.model import CheckResult

POSTGRES_RUNNING = "postgres.running"
OBJECTSTORE_RUNNING = "objectstore.running"
BACKEND_RUNNING = "backend.running"
POSTGRES_READY = "postgres.ready"
POSTGRES_MIGRATIONS = "postgres.migrations"
OBJECTSTORE_READY = "objectstore.ready"
BACKEND_HEALTH = "backend.health"

ROUTE_ROOT = "route.root"
ROUTE_HEALTH = "route.health"
ROUTE_VERSION = "route.version"
ROUTE_AUTH_PROVIDERS = "route.auth.providers"
ROUTE_AUTH_SESSION = "route.auth.session"
ROUTE_API = "route.api"
ROUTE_API_FOREIGN_HOST = "route.api.foreign_host"
ROUTE_ADMIN = "route.admin"
ROUTE_ADMIN_DB_HEALTH = "route.admin.db_health"
ROUTE_NOT_FOUND = "route.not_found"
MIDDLEWARE_REQUEST_ID = "middleware.request_id"
MIDDLEWARE_CSRF = "middleware.csrf"
MIDDLEWARE_CSRF_AUTH_SCOPE = "middleware.csrf.auth_scope"
MIDDLEWARE_CORS_ALLOWED = "middleware.cors.allowed"
MIDDLEWARE_CORS_DENIED = "middleware.cors.denied"
BLOB_ROUNDTRIP = "blob.roundtrip"

SCAFFOLD_CARGO_CHECK = "scaffold.cargo_check"
SCAFFOLD_CARGO_FMT = "scaffold.cargo_fmt"
SCAFFOLD_CARGO_CLIPPY = "scaffold.cargo_clippy"
SCAFFOLD_DOCKERFILE = "scaffold.dockerfile"

SERVICE_CHECKS: Mapping[str, str] = MappingProxyType(
    {
        POSTGRES_RUNNING: "Postgres running",
        POSTGRES_READY: "Postgres answers SQL",
        POSTGRES_MIGRATIONS: "Postgres migrations applied",
        OBJECTSTORE_RUNNING: "Object store running",
        OBJECTSTORE_READY: "Object store bucket round trip",
        BACKEND_RUNNING: "Backend running",
        BACKEND_HEALTH: "Backend healthy",
    }
)
# `<service>.running`: the root cause that explains every check needing that service.
RUNNING_CHECKS: Mapping[str, str] = MappingProxyType(
    {"postgres": POSTGRES_RUNNING, "objectstore": OBJECTSTORE_RUNNING, "backend": BACKEND_RUNNING}
)
# The services whose absence explains a readiness check's failure (contract checks say theirs
# in the contract file). The backend applies the migrations at start.
SERVICE_CHECK_NEEDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        POSTGRES_READY: ("postgres",),
        POSTGRES_MIGRATIONS: ("postgres", "backend"),
        OBJECTSTORE_READY: ("objectstore",),
        BACKEND_HEALTH: ("backend",),
    }
)

CONTRACT_CHECKS: Mapping[str, str] = MappingProxyType(
    {
        ROUTE_ROOT: "GET / banner",
        ROUTE_HEALTH: "GET /health",
        ROUTE_VERSION: "GET /version",
        ROUTE_AUTH_PROVIDERS: "GET /auth/providers",
        ROUTE_AUTH_SESSION: "GET /auth/session",
        ROUTE_API: "GET /api",
        ROUTE_API_FOREIGN_HOST: "GET /api from a foreign Host",
        ROUTE_ADMIN: "GET /admin",
        ROUTE_ADMIN_DB_HEALTH: "GET /admin/db/health",
        ROUTE_NOT_FOUND: "Unknown route is 404",
        MIDDLEWARE_REQUEST_ID: "Request id echoed and generated",
        MIDDLEWARE_CSRF: "CSRF rejects a POST without Origin",
        MIDDLEWARE_CSRF_AUTH_SCOPE: "CSRF leaves /auth/* alone",
        MIDDLEWARE_CORS_ALLOWED: "CORS allows the frontend origin",
        MIDDLEWARE_CORS_DENIED: "CORS denies a foreign origin",
        BLOB_ROUNDTRIP: "Blob upload, read and delete",
    }
)

SCAFFOLD_CHECKS: Mapping[str, str] = MappingProxyType(
    {
        SCAFFOLD_CARGO_CHECK: "Backend compiles",
        SCAFFOLD_CARGO_FMT: "Backend formatted",
        SCAFFOLD_CARGO_CLIPPY: "Backend linted",
        SCAFFOLD_DOCKERFILE: "Docker setup",
    }
)

CHECK_NAMES: Mapping[str, str] = MappingProxyType(
    {**SERVICE_CHECKS, **CONTRACT_CHECKS, **SCAFFOLD_CHECKS}
)
ALL_CHECK_IDS: tuple[str, ...] = tuple(CHECK_NAMES)

# Which checks speak for a service's provider: a LATER item is resolved only by these.
SERVICE_CHECK_PREFIXES: Mapping[str, str] = MappingProxyType(
    {"postgres": "postgres.", "objectstore": "objectstore."}
)


def check_name(check_id: str) -> str:
    """The human name of a check id; unknown ids name themselves."""
    return CHECK_NAMES.get(check_id, check_id)


def service_checks(service: str, checks: Iterable[CheckResult]) -> list[CheckResult]:
    """The checks that verify one service's provider (none for services without a prefix)."""
    prefix = SERVICE_CHECK_PREFIXES.get(service)
    if prefix is None:
        return []
    return [c for c in checks if c.id.startswith(prefix)]


def ordered(checks: Iterable[CheckResult]) -> list[CheckResult]:
    """Checks in the canonical id order; ids outside the vocabulary follow, sorted."""
    rank = {cid: i for i, cid in enumerate(ALL_CHECK_IDS)}
    return sorted(checks, key=lambda c: (rank.get(c.id, len(rank)), c.id))
