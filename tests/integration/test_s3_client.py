"""devenv's own S3 client on the real object store, boto3 as the oracle: listings page by
page, content types and metadata both ways, batch deletes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devenv.model import S3Target
from devenv.probes.base import S3Client
from tests.integration.conftest import Stack


@pytest.fixture
def bucket(shared_stack: Stack) -> Iterator[tuple[S3Target, Any, str]]:
    """The shared stack's bucket, an SDK client on it, and a key prefix of this test's own."""
    import boto3

    target = shared_stack.storage()
    sdk = boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
    )
    prefix = f"s3-client-{uuid.uuid4().hex[:8]}/"
    yield target, sdk, prefix
    listed = sdk.list_objects_v2(Bucket=target.bucket, Prefix=prefix).get("Contents", [])
    for entry in listed:
        sdk.delete_object(Bucket=target.bucket, Key=entry["Key"])


def test_listing_pages_through_continuation_tokens(bucket: tuple[S3Target, Any, str]) -> None:
    target, sdk, prefix = bucket
    keys = [f"{prefix}{d}/{n}" for d in ("a", "b") for n in range(3)] + [f"{prefix}top"]
    for key in keys:
        sdk.put_object(Bucket=target.bucket, Key=key, Body=key.encode())
    with S3Client(target) as s3:
        listed = s3.list_objects(prefix, page_size=2)  # four pages
        grouped = s3.list_objects(prefix, delimiter="/", page_size=1)
    assert sorted(o.key for o in listed.objects) == sorted(keys)
    assert {o.key: o.size for o in listed.objects} == {k: len(k) for k in keys}
    oracle = sdk.list_objects_v2(Bucket=target.bucket, Prefix=prefix)["Contents"]
    assert {o.key: o.last_modified[:19] for o in listed.objects} == {
        e["Key"]: e["LastModified"].strftime("%Y-%m-%dT%H:%M:%S") for e in oracle
    }
    assert sorted(grouped.prefixes) == [f"{prefix}a/", f"{prefix}b/"]
    assert [o.key for o in grouped.objects] == [f"{prefix}top"]


def test_content_type_and_metadata_survive_both_ways(bucket: tuple[S3Target, Any, str]) -> None:
    target, sdk, prefix = bucket
    sdk.put_object(
        Bucket=target.bucket,
        Key=f"{prefix}theirs.png",
        Body=b"\x89PNG",
        ContentType="image/png",
        Metadata={"owner": "dev", "Upload-Id": "42"},
    )
    with S3Client(target) as s3:
        got = s3.get_object(f"{prefix}theirs.png")
        assert s3.get_object(f"{prefix}missing") is None
        s3.put_object(
            f"{prefix}ours.csv",
            b"a,b\n",
            content_type="text/csv",
            metadata=(("owner", "dev"), ("upload-id", "43")),
        )
    assert got is not None
    assert (got.body, got.content_type) == (b"\x89PNG", "image/png")
    assert got.metadata == (("owner", "dev"), ("upload-id", "42"))
    theirs = sdk.get_object(Bucket=target.bucket, Key=f"{prefix}ours.csv")
    assert theirs["Body"].read() == b"a,b\n"
    assert theirs["ContentType"] == "text/csv"
    assert theirs["Metadata"] == {"owner": "dev", "upload-id": "43"}


def test_batch_delete_removes_exactly_the_keys_given(bucket: tuple[S3Target, Any, str]) -> None:
    target, sdk, prefix = bucket
    keys = [f"{prefix}{n} & <{n}>" for n in range(5)]  # escaped in the request document
    for key in keys:
        sdk.put_object(Bucket=target.bucket, Key=key, Body=b"x")
    with S3Client(target) as s3:
        assert s3.delete_objects(keys[:3]) == []
    left = sdk.list_objects_v2(Bucket=target.bucket, Prefix=prefix).get("Contents", [])
    assert sorted(e["Key"] for e in left) == keys[3:]
