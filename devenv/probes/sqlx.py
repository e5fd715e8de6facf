"""Read a database's `_sqlx_migrations` rows, read-only, as one probe attempt."""

from __future__ import annotations

from devenv.migrations import AppliedMigration
from devenv.probes.base import ProbeFailure

_EXISTS = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL"
_SELECT = "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version"


def read_applied(url: str, *, connect_timeout: int = 2) -> tuple[AppliedMigration, ...]:
    """Every row of `_sqlx_migrations` (none when the table does not exist yet).

    The session is read-only: checking a database never changes it, not even an external one.
    """
    from devenv.probes import pgwire

    target = pgwire.usable(url)
    if target is not None:  # a local stand-in: no need to load libpq

        def statements(last: pgwire.Rows, index: int) -> str | None:
            if index == 0:
                return _EXISTS
            return _SELECT if index == 1 and last == [["t"]] else None

        try:
            rows = pgwire.queries(target, statements, timeout=connect_timeout)
        except ProbeFailure as exc:
            raise ProbeFailure(
                f"cannot read _sqlx_migrations: {exc.message}", transient=exc.transient
            ) from exc
        if rows == [["f"]]:  # no table yet: nothing migrated
            return ()
        return tuple(
            AppliedMigration(int(v or 0), d or "", s == "t", bytes.fromhex((c or "")[2:]))
            for v, d, s, c in rows
        )
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=connect_timeout) as conn:
            conn.read_only = True
            exists = conn.execute(_EXISTS).fetchone()
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
