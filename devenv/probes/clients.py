"""The stack's services as a client on the host sees them: probes, the bucket, the database.

Everything here runs against providers, local or real. What a protected provider is asked is
read-only: its readiness probe reads (the S3 probe HEADs the bucket and lists one key instead of
a put/get/delete round trip), migrations are read in a read-only session, and the writes
(creating the bucket, seeding the dev user) are planned for it only when the user says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from devenv.model import DEV_USER_ID
from devenv.probes.base import HttpProbe, Probe, ProbeFailure, S3Client, S3Probe
from devenv.probes.postgres import PostgresProbe

if TYPE_CHECKING:
    from devenv.migrations import AppliedMigration
    from devenv.stack import Stack


class Clients(Protocol):
    """What devenv asks of the stack's services; every failure is a ProbeFailure."""

    def probe(self, service: str) -> Probe: ...

    def bucket_exists(self) -> bool: ...

    def create_bucket(self) -> None: ...

    def applied_migrations(self) -> tuple[AppliedMigration, ...]: ...

    def seed_dev_user(self) -> None: ...

    def object_exists(self, key: str) -> bool: ...


ClientsFor = Callable[["Stack"], Clients]  # how a use case gets the clients of a stack


class StackClients:
    """The real clients of one resolved stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def probe(self, service: str) -> Probe:
        """The readiness probe `x-devenv.probe` names, at the service's endpoint."""
        from devenv.config.secrets import mask_url

        spec = self.stack.project.service(service).probe
        if spec.kind == "postgres":
            url = self.stack.endpoints.database_url
            return PostgresProbe(url=url, display=mask_url(url), name=service)
        if spec.kind == "s3":
            read_only = self.stack.protected(service)
            return S3Probe(self.stack.endpoints.storage, read_only=read_only, name=service)
        return HttpProbe(url=self.stack.url(service) + spec.path, name=service)

    def bucket_exists(self) -> bool:
        with S3Client(self.stack.endpoints.storage) as s3:
            return s3.bucket_exists()

    def create_bucket(self) -> None:
        with S3Client(self.stack.endpoints.storage) as s3:
            if not s3.bucket_exists():
                s3.create_bucket()

    def applied_migrations(self) -> tuple[AppliedMigration, ...]:
        from devenv.probes.sqlx import read_applied

        return read_applied(self.stack.endpoints.database_url)

    def seed_dev_user(self) -> None:
        import psycopg

        try:
            with psycopg.connect(
                self.stack.endpoints.database_url, autocommit=True, connect_timeout=5
            ) as conn:
                conn.execute(
                    "INSERT INTO users (id, email, name, role, approved, age_verified, "
                    "tos_accepted) VALUES (%s, 'dev@localhost', 'Local Dev User', 'admin', "
                    "true, true, true) ON CONFLICT (id) DO UPDATE SET role = 'admin', "
                    "approved = true, age_verified = true, tos_accepted = true",
                    (DEV_USER_ID,),
                )
        except psycopg.Error as exc:
            text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise ProbeFailure(text, transient=False) from exc

    def object_exists(self, key: str) -> bool:
        with S3Client(self.stack.endpoints.storage) as s3:
            return s3.get(key) is not None
