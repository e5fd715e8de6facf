#!/bin/sh
# First start of a data directory: adapt the image's ready-made cluster to POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB in single-user mode (no temporary server, no restart),
# or, when the volume came without it, initialise one in the same single pass.
set -eu
[ "${1:-}" = postgres ] && shift

sql_literal() { printf '%s' "$1" | sed "s/'/''/g"; }
sql_ident() { printf '%s' "$1" | sed 's/"/""/g'; }

settings() {  # user database password from-template; one statement per line
  user="$(sql_ident "$1")"; db="$(sql_ident "$2")"; pw="$(sql_literal "$3")"
  if [ -n "$4" ]; then
    if [ "$2" = postgres ]; then
      echo "DROP DATABASE devenv_app"
    else
      echo "ALTER DATABASE devenv_app RENAME TO \"$db\""
      [ "$1" = postgres ] && echo "ALTER DATABASE \"$db\" OWNER TO postgres"
    fi
    if [ "$1" = postgres ]; then
      echo "DROP ROLE devenv_app"
    else
      echo "ALTER ROLE devenv_app RENAME TO \"$user\""
    fi
  else
    [ "$1" = postgres ] || echo "CREATE ROLE \"$user\" SUPERUSER LOGIN"
    [ "$2" = postgres ] || echo "CREATE DATABASE \"$db\" OWNER \"$user\""
  fi
  echo "ALTER ROLE \"$user\" PASSWORD '$pw'"
}

if [ -f "$PGDATA/.devenv-template" ] || [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  template=""
  if [ -f "$PGDATA/.devenv-template" ]; then
    template=yes
  else
    initdb -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 --wal-segsize=1 --no-sync >/dev/null
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  fi
  settings "$user" "$db" "$POSTGRES_PASSWORD" "$template" \
    | postgres --single -D "$PGDATA" postgres >/dev/null
  rm -f "$PGDATA/.devenv-template"
  echo "devenv: initialised $PGDATA for user $user, database $db"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
