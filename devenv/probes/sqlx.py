"""Read a database's `_sqlx_migrations` rows, read-only, as one probe attempt."""

from __future__ import annotations

from devenv.migrations import AppliedMigration
from devenv.probes.base import ProbeFailure

_SELECT = "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version"


def read_applied(url: str, *, connect_timeout: int = 2) -> tuple[AppliedMigration, ...]:
    """Every row of `_sqlx_migrations` (none when the table does not exist yet).

    The session is read-only: checking a database never changes it, not even an external one.
    """
    from devenv.probes import pgwire

    target = pgwire.usable(url)
    if target is not None:  # a local stand-in: no need to load libpq
        try:
            rows = pgwire.query(target, _SELECT, timeout=connect_timeout)
        except pgwire.ServerError as exc:
            if exc.code == "42P01":  # undefined_table: nothing migrated yet
                return ()
            raise ProbeFailure(
                f"cannot read _sqlx_migrations: {exc.message}", transient=exc.transient
            ) from exc
        except ProbeFailure as exc:
            raise ProbeFailure(
                f"cannot read _sqlx_migrations: {exc.message}", transient=exc.transient
            ) from exc
        return tuple(
            AppliedMigration(int(v or 0), d or "", s == "t", bytes.fromhex((c or "")[2:]))
            for v, d, s, c in rows
        )
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=connect_timeout) as conn:
            conn.read_only = True
            exists = conn.execute("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return ()
            found = conn.execute(_SELECT).fetchall()
    except psycopg.Error as exc:
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        permanent = "password authentication failed" in text or (
            "does not exist" in text and "database" in text
        )
        raise ProbeFailure(
            f"cannot read _sqlx_migrations: {text}", transient=not permanent
        ) from exc
    return tuple(
        AppliedMigration(int(v), str(d), bool(s), bytes(c) if c is not None else b"")
        for v, d, s, c in found
    )
