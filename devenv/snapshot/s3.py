"""Bucket side of snapshots: objects copied with their keys, bytes, content types and metadata.

Through the S3 API rather than the store's files, so that it works the same on s3s-fs, MinIO
or any other S3-compatible stand-in. boto3 is imported here only, when a snapshot needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from devenv.errors import DevenvError, ReadinessError
from devenv.snapshot.model import ObjectEntry, reserved

if TYPE_CHECKING:
    from devenv.probes.base import S3Target
    from devenv.snapshot.store import Store

T = TypeVar("T")
WORKERS = 8  # measured on 200 objects: 8 parallel requests halve the time of 1
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


def client(target: S3Target) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        max_pool_connections=WORKERS * 2,
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=3,
        read_timeout=30,
        # plain PUTs: no aws-chunked encoding or trailing checksums a stand-in may not know
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        config=config,
    )


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """botocore's errors as devenv's, at this boundary."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        yield
    except EndpointConnectionError as exc:
        raise ReadinessError(
            f"objectstore: cannot connect while {doing}: {exc}",
            hint="`devenv status` shows whether the object store runs; `devenv up` starts it",
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DevenvError(
            f"objectstore: {doing} failed: {error.get('Code', '?')} {error.get('Message', '')}"
        ) from exc
    except BotoCoreError as exc:
        raise DevenvError(f"objectstore: {doing} failed: {exc}") from exc


def _parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(fn, items))


class Bucket:
    def __init__(self, target: S3Target, s3: Any = None) -> None:
        self.target = target
        self.name = target.bucket
        self.s3 = s3 if s3 is not None else client(target)

    def listing(self, prefix: str = "") -> dict[str, str]:
        """key -> "<last modified>|<size>" under `prefix` (without one, devenv's reserved
        scratch left out): what changes whenever anyone writes the object."""
        found: dict[str, str] = {}
        with translated(f"listing bucket {self.name}"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix
            )
            for page in pages:
                for o in page.get("Contents", []):
                    key = str(o["Key"])
                    if prefix or not reserved(key):
                        found[key] = f"{o['LastModified'].isoformat()}|{o['Size']}"
        return found

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under `prefix`; without one, every key but devenv's reserved scratch."""
        return list(self.listing(prefix))

    def prefixes(self, prefix: str) -> list[str]:
        """The "directories" right under `prefix`."""
        found: list[str] = []
        with translated(f"listing bucket {self.name}"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                found += [str(p["Prefix"]) for p in page.get("CommonPrefixes", [])]
        return found

    def ensure(self) -> None:
        from botocore.exceptions import ClientError

        with translated(f"creating bucket {self.name}"):
            try:
                self.s3.head_bucket(Bucket=self.name)
            except ClientError:
                self.s3.create_bucket(Bucket=self.name)

    def dump(self, store: Store) -> list[ObjectEntry]:
        """Copy every object (reserved keys aside) into the store; entries sorted by key.
        Records what the bucket holds now (see `restore`)."""
        listed = self.listing()

        def one(key: str) -> ObjectEntry:
            with translated(f"reading object {key}"):
                got = self.s3.get_object(Bucket=self.name, Key=key)
                data = got["Body"].read()
            return ObjectEntry(
                key=key,
                sha256=store.add_object(data),
                size=len(data),
                content_type=str(got.get("ContentType") or ""),  # "" when it had none
                metadata=tuple(sorted((got.get("Metadata") or {}).items())),
            )

        entries = sorted(_parallel(one, list(listed)), key=lambda e: e.key)
        # an object rewritten between the listing and the read keeps its old stamp here, so
        # the next restore writes it back rather than trusting it
        store.write_synced({e.key: (e.version, listed[e.key]) for e in entries})
        return entries

    def restore(self, store: Store, entries: Sequence[ObjectEntry]) -> tuple[int, int]:
        """Make the bucket hold exactly `entries` (reserved keys aside), then delete every
        other key. Returns (written, deleted).

        An object is written unless the bucket still holds what devenv last synced for that
        key: the same version (bytes, content type, metadata) with the same last-modified
        time and size in the listing. Any write by anyone changes the last-modified time."""
        self.ensure()
        listed = self.listing()
        synced = store.synced()
        todo = [e for e in entries if synced.get(e.key) != (e.version, listed.get(e.key))]

        def put(entry: ObjectEntry) -> None:
            data = store.read_object(entry.sha256)
            extra = {"ContentType": entry.content_type} if entry.content_type else {}
            with translated(f"writing object {entry.key}"):
                self.s3.put_object(
                    Bucket=self.name,
                    Key=entry.key,
                    Body=data,
                    Metadata=dict(entry.metadata),
                    **extra,
                )

        store.write_synced({})  # until the writes are done, nothing is known to be in sync
        _parallel(put, todo)
        wanted = {e.key for e in entries}
        extra = [k for k in listed if k not in wanted]
        self.delete(extra)
        now = self.listing()
        store.write_synced({e.key: (e.version, now[e.key]) for e in entries if e.key in now})
        return len(todo), len(extra)

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + DELETE_BATCH]]
            with translated(f"deleting {len(batch)} object(s)"):
                answer = self.s3.delete_objects(
                    Bucket=self.name, Delete={"Objects": batch, "Quiet": True}
                )
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise DevenvError(
                    f"objectstore: deleting {first.get('Key')} failed: {first.get('Code')} "
                    f"{first.get('Message', '')}".rstrip()
                )

    def delete_prefix(self, prefix: str) -> int:
        keys = self.keys(prefix)
        self.delete(keys)
        return len(keys)
