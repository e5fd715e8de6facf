#!/bin/sh
# Initialise in one pass (initdb, then single-user mode for the database), with no temporary
# server and no restart, so the first TCP connection is accepted as early as possible.
set -eu
[ "${1:-}" = postgres ] && shift
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  pwfile="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-host=scram-sha-256 \
    --auth-local=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$db" "$user" \
      | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "devenv: initialised $PGDATA for user $user, database $db"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
