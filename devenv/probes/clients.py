"""The stack's services as a client on the host sees them: probes, the bucket, the database,
and the golden snapshot of the two.

Everything here runs against providers, local or real. What a protected provider is asked is
read-only: its readiness probe reads (the S3 probe HEADs the bucket and lists one key instead of
a put/get/delete round trip, as every liveness probe of `status` does), migrations are read in
a read-only session, and the writes (creating the bucket, seeding the dev user) are planned for
it only when the user says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from devenv.model import DEV_USER_ID
from devenv.probes.base import HttpProbe, Probe, ProbeFailure, S3Client, S3Probe
from devenv.probes.postgres import PostgresProbe

if TYPE_CHECKING:
    from devenv.migrations import AppliedMigration
    from devenv.snapshot.model import GoldenFacts, Provenance
    from devenv.stack import Stack


class Clients(Protocol):
    """What devenv asks of the stack's services; every failure is a ProbeFailure."""

    def probe(self, service: str, *, write: bool = True) -> Probe: ...

    def bucket_exists(self) -> bool: ...

    def create_bucket(self) -> None: ...

    def applied_migrations(self) -> tuple[AppliedMigration, ...]: ...

    def seed_dev_user(self) -> None: ...

    def object_exists(self, key: str) -> bool: ...

    def golden(self, *, ask_database: bool) -> GoldenFacts: ...

    def take_golden(self, made: Provenance) -> str: ...


ClientsFor = Callable[["Stack"], Clients]  # how a use case gets the clients of a stack


class StackClients:
    """The real clients of one resolved stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def probe(self, service: str, *, write: bool = True) -> Probe:
        """The readiness probe `x-devenv.probe` names, at the service's endpoint.

        `write=False` asks for a liveness probe that changes nothing (`status`, the dashboard's
        poll every second): the object store is read, not written. `up` and the checks prove
        a write with the round trip, which leaves the bucket as it found it."""
        from devenv.config.secrets import mask_url

        spec = self.stack.project.service(service).probe
        if spec.kind == "postgres":
            url = self.stack.endpoints.database_url
            return PostgresProbe(url=url, display=mask_url(url), name=service)
        if spec.kind == "s3":
            storage = self.stack.endpoints.storage
            if self.stack.protected(service):
                return S3Probe(storage, read_only=True, name=service)
            if not write:
                return S3Probe(storage, read_only=True, name=service, reason="liveness only")
            return S3Probe(storage, name=service)
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

    def golden(self, *, ask_database: bool) -> GoldenFacts:
        """What the snapshot store says of the golden snapshot and, when `ask_database`
        (Postgres runs), whether its database still carries the same token (read-only)."""
        from devenv.errors import RefusedError
        from devenv.snapshot.model import GOLDEN, GoldenFacts
        from devenv.snapshot.pg import tokens
        from devenv.snapshot.store import Store

        try:
            manifest = Store(self.stack.name).load(GOLDEN)
        except RefusedError as exc:
            return GoldenFacts(saved=True, unreadable=exc.message)
        if manifest is None:
            return GoldenFacts()
        if not ask_database:
            return GoldenFacts(saved=True)
        try:
            found = tokens(self.stack.endpoints.database_url, manifest.database)
        except ProbeFailure:
            return GoldenFacts(saved=True)
        return GoldenFacts(saved=True, intact=found.get(manifest.database) == manifest.token)

    def take_golden(self, made: Provenance) -> str:
        """Copy the database and the bucket into the golden snapshot, the stack left up."""
        from devenv.errors import DevenvError
        from devenv.snapshot.service import take_golden

        try:
            result = take_golden(self.stack, made)
        except DevenvError as exc:
            raise ProbeFailure(exc.message, transient=False) from exc
        m = result.manifest
        return (
            f"golden snapshot taken in {result.seconds:.2f}s (database "
            f"{m.database_bytes / 1e6:.1f} MB, {len(m.objects)} object(s))"
        )
