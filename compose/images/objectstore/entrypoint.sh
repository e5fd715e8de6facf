#!/bin/sh
# Accept MinIO's command line (`server DIR [--console-address ADDR]`) and credentials
# (MINIO_ROOT_USER / MINIO_ROOT_PASSWORD), so one compose service runs either server.
set -eu
dir=/data
if [ "${1:-}" = server ]; then
  shift
  case "${1:-}" in ""|--*) ;; *) dir="$1" ;; esac
fi
: "${MINIO_ROOT_USER:?MINIO_ROOT_USER must be set}"
: "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD must be set}"
exec /usr/local/bin/s3s-fs --host 0.0.0.0 --port 9000 \
  --access-key "$MINIO_ROOT_USER" --secret-key "$MINIO_ROOT_PASSWORD" "$dir"
