"""Postgres side of snapshots: template databases cloned, sealed, swapped and dropped.

Every statement runs on the server's maintenance database (`postgres`), never on the database
being copied or replaced, and waits on locks for a bounded time only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from devenv.errors import ReadinessError

if TYPE_CHECKING:
    import psycopg

MAINTENANCE_DB = "postgres"
LOCK_TIMEOUT = "3s"  # a lock someone holds longer fails the step, never hangs it
CLOSE_DEADLINE = 5.0  # terminated sessions usually vanish in milliseconds


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def translate(exc: Exception, doing: str) -> ReadinessError:
    """A psycopg error as devenv's: the local Postgres is not serving what devenv asks of it
    (unreachable, or a statement failed), named with the step."""
    import psycopg

    text = _first_line(exc)
    if isinstance(exc, psycopg.OperationalError) and "connection" in text.lower():
        return ReadinessError(
            f"postgres: cannot connect while {doing}: {text}",
            hint="`devenv status` shows whether postgres runs; `devenv up` starts it",
        )
    return ReadinessError(
        f"postgres: {doing} failed: {text}", hint="`devenv logs postgres` may say more"
    )


class Admin:
    """One autocommit session on the maintenance database of the project's server."""

    def __init__(self, database_url: str, *, connect_timeout: int = 5) -> None:
        import psycopg

        self.url = database_url
        try:
            self.conn: psycopg.Connection[Any] = psycopg.connect(
                with_database(database_url, MAINTENANCE_DB),
                autocommit=True,
                connect_timeout=connect_timeout,
                application_name="devenv-snapshot",
            )
        except psycopg.Error as exc:
            raise translate(exc, "opening an admin session") from exc
        self.conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _one(self, query: Any, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        return row[0] if row else None

    @contextmanager
    def step(self, doing: str) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise translate(exc, doing) from exc

    # --- facts ---------------------------------------------------------------------------
    def server_major(self) -> int:
        return int(self._one("SELECT current_setting('server_version_num')::int")) // 10000

    def server_version(self) -> str:
        return str(self._one("SELECT current_setting('server_version')")).split()[0]

    def exists(self, name: str) -> bool:
        return bool(self._one("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))

    def comment(self, name: str) -> str | None:
        value = self._one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        )
        return None if value is None else str(value)

    def size(self, name: str) -> int:
        return int(self._one("SELECT pg_database_size(%s)", (name,)) or 0)

    def databases(self, prefix: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY datname",
            (prefix,),
        ).fetchall()
        return [str(r[0]) for r in rows]

    # --- changes -------------------------------------------------------------------------
    def close_connections(self, name: str, *, deadline: float = CLOSE_DEADLINE) -> int:
        """Let nobody new in, end every other session on `name`, and wait (bounded) until
        they are gone. Returns how many were ended. Call `allow_connections` afterwards."""
        from psycopg import sql

        db = sql.Identifier(name)
        self.conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(db))
        ended = 0
        give_up = time.monotonic() + deadline
        delay = 0.005
        while True:
            rows = self.conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
            if not rows:
                return ended
            ended = max(ended, len(rows))
            if time.monotonic() > give_up:
                self.allow_connections(name, True)
                raise ReadinessError(
                    f"postgres: {len(rows)} session(s) on database {name} did not end within "
                    f"{deadline:.0f}s",
                    hint="see them in pg_stat_activity; nothing was changed",
                )
            # a terminated backend leaves pg_stat_activity a moment later; poll, do not hang
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def allow_connections(self, name: str, allowed: bool) -> None:
        from psycopg import sql

        self.conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )

    def clone(self, template: str, new: str, *, strategy: str | None) -> None:
        """`CREATE DATABASE new TEMPLATE template`; nobody may be connected to the template."""
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(new), sql.Identifier(template)
        )
        if strategy:
            query = sql.SQL("{} STRATEGY {}").format(query, sql.SQL(strategy))
        self.conn.execute(query)

    def seal(self, name: str, token: str) -> None:
        """A snapshot database: a template nobody can connect to (so cloning it never waits),
        which a stray DROP DATABASE refuses, carrying the token of its manifest."""
        from psycopg import sql

        db = sql.Identifier(name)
        self.conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true").format(db)
        )
        self.conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(db, sql.Literal(token)))

    def swap(self, current: str, incoming: str, old: str) -> None:
        """`current` becomes `old` and `incoming` becomes `current`, in one transaction: either
        both renames happen or neither does."""
        from psycopg import sql

        with self.conn.transaction():
            self.conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(current), sql.Identifier(old)
                )
            )
            self.conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(incoming), sql.Identifier(current)
                )
            )

    def rename(self, name: str, new: str) -> None:
        from psycopg import sql

        self.conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(name), sql.Identifier(new)
            )
        )

    def drop(self, name: str) -> None:
        """Drop a database of devenv's own (a snapshot, a clone, a leftover), whoever is on it."""
        from psycopg import sql

        if not self.exists(name):
            return
        db = sql.Identifier(name)
        self.conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(db))
        self.conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(db))


def read_applied_rows(url: str) -> tuple[Any, ...]:
    """The database's `_sqlx_migrations` rows (read-only), as devenv's migrations module reads
    them; a failure is devenv's error, not a probe failure."""
    from devenv.probes.base import ProbeFailure
    from devenv.probes.sqlx import read_applied

    try:
        return read_applied(url)
    except ProbeFailure as exc:
        raise ReadinessError(f"postgres: {exc.message}") from exc


_TOKENS = (
    "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
    "WHERE starts_with(datname, $1)"
)


def tokens(url: str, prefix: str) -> dict[str, str | None]:
    """Every database whose name starts with `prefix`, with its comment (a snapshot's token),
    read in a read-only session. Raises ProbeFailure."""
    from devenv.probes import pgwire
    from devenv.probes.base import ProbeFailure

    # the simple query protocol takes no parameters: the prefix is quoted as a literal
    sql = _TOKENS.replace("$1", "'" + prefix.replace("'", "''") + "'")
    target = pgwire.usable(url)
    if target is not None:  # a local stand-in: no need to load libpq
        return {str(name): comment for name, comment in pgwire.query(target, sql, timeout=2.0)}
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.read_only = True
            rows = conn.execute(sql).fetchall()
    except psycopg.Error as exc:
        raise ProbeFailure(_first_line(exc)) from exc
    return {str(name): None if comment is None else str(comment) for name, comment in rows}
