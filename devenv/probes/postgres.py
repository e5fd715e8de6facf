"""The Postgres readiness probe: `SELECT 1` over TCP with the real protocol and credentials."""

from __future__ import annotations

from dataclasses import dataclass

from devenv.probes import pgwire
from devenv.probes.base import ProbeFailure, first_line


@dataclass
class PostgresProbe:
    """`SELECT 1` over TCP with the real protocol and the real credentials."""

    url: str
    display: str
    name: str = "postgres"
    connect_timeout: float = 2.0

    @property
    def endpoint(self) -> str:
        return self.display

    def attempt(self) -> str:
        target = pgwire.usable(self.url)
        if target is not None:  # a local stand-in: no need to load libpq
            rows = pgwire.query(target, "SELECT 1", timeout=self.connect_timeout)
            if rows != [["1"]]:
                raise ProbeFailure(f"SELECT 1 returned {rows!r}", transient=False)
            return "SELECT 1 ok"
        import psycopg

        try:
            with psycopg.connect(
                self.url, connect_timeout=max(1, int(self.connect_timeout)), autocommit=True
            ) as conn:
                row = conn.execute("SELECT 1").fetchone()
        except psycopg.OperationalError as exc:
            text = first_line(exc)
            permanent = "password authentication failed" in text or (
                "does not exist" in text and "database" in text
            )
            raise ProbeFailure(text, transient=not permanent) from exc
        except psycopg.Error as exc:
            raise ProbeFailure(first_line(exc)) from exc
        if row != (1,):
            raise ProbeFailure(f"SELECT 1 returned {row!r}", transient=False)
        return "SELECT 1 ok"
