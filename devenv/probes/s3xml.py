"""The S3 documents bulk object calls exchange (ListObjectsV2, DeleteObjects), pure.

Queries and bodies are built and answers parsed here, apart from the HTTP client, so that
they are tested without a server. Answers come from the project's own object store; the
standard library's expat parser expands no external entities and, since expat 2.4.1, refuses
entity-expansion bombs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

META = "x-amz-meta-"  # user metadata travels in headers with this prefix
MAX_KEYS = 1000  # the most keys one ListObjectsV2 page or one DeleteObjects request holds


@dataclass(frozen=True)
class ListedObject:
    key: str
    last_modified: str  # as the store wrote it (ISO 8601); any write changes it
    size: int


@dataclass(frozen=True)
class Listing:
    objects: tuple[ListedObject, ...] = ()
    prefixes: tuple[str, ...] = ()  # CommonPrefixes, with a delimiter
    next_token: str | None = None  # where the next page starts; None on the last page


@dataclass(frozen=True)
class DeleteError:
    key: str
    code: str
    message: str


def list_query(
    prefix: str = "", *, delimiter: str = "", token: str | None = None, page_size: int = MAX_KEYS
) -> str:
    """The query string of one ListObjectsV2 page, its values percent-encoded."""
    params = {"list-type": "2", "max-keys": str(page_size)}
    if prefix:
        params["prefix"] = prefix
    if delimiter:
        params["delimiter"] = delimiter
    if token:
        params["continuation-token"] = token
    return "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))


def _name(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]  # without the S3 namespace, when there is one


def _child(element: ElementTree.Element, name: str) -> str:
    for child in element:
        if _name(child) == name:
            return child.text or ""
    return ""


def _parse(document: bytes) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(document)  # noqa: S314 - see the module docstring
    except ElementTree.ParseError as exc:
        raise ValueError(f"not an XML document ({exc})") from exc


def parse_listing(document: bytes) -> Listing:
    """A ListBucketResult; raises ValueError when it is not one."""
    root = _parse(document)
    if _name(root) != "ListBucketResult":
        raise ValueError(f"expected ListBucketResult, got {_name(root)}")
    objects: list[ListedObject] = []
    prefixes: list[str] = []
    for element in root:
        if _name(element) == "Contents":
            size = _child(element, "Size")
            objects.append(
                ListedObject(
                    _child(element, "Key"), _child(element, "LastModified"), int(size or 0)
                )
            )
        elif _name(element) == "CommonPrefixes":
            prefixes.append(_child(element, "Prefix"))
    truncated = _child(root, "IsTruncated").strip().lower() == "true"
    token = _child(root, "NextContinuationToken") or None
    if truncated and token is None:
        raise ValueError("a truncated listing without NextContinuationToken")
    return Listing(tuple(objects), tuple(prefixes), token if truncated else None)


def delete_body(keys: Sequence[str]) -> bytes:
    """The DeleteObjects document for up to MAX_KEYS keys, in quiet mode (errors only)."""
    if not 0 < len(keys) <= MAX_KEYS:
        raise ValueError(f"DeleteObjects takes 1 to {MAX_KEYS} keys, not {len(keys)}")
    items = "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in keys)
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    return f"{head}<Delete><Quiet>true</Quiet>{items}</Delete>".encode()


def content_md5(body: bytes) -> str:
    """The Content-MD5 header S3 requires on DeleteObjects (an integrity check, not security)."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def parse_delete_errors(document: bytes) -> list[DeleteError]:
    """The keys a DeleteResult says were not deleted."""
    root = _parse(document)
    return [
        DeleteError(_child(e, "Key"), _child(e, "Code"), _child(e, "Message"))
        for e in root
        if _name(e) == "Error"
    ]


def metadata_headers(metadata: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {f"{META}{k.lower()}": v for k, v in metadata}


def metadata_of(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """User metadata from response headers (lower-case names), sorted."""
    return tuple(sorted((k[len(META) :], v) for k, v in headers.items() if k.startswith(META)))
