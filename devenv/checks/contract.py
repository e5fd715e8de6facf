"""Route-contract checks over HTTP: the contract file's checks sent to a running backend."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devenv.checks.engine import (
    ObjectExists,
    Recorded,
    Request,
    TransportError,
    run_check,
    variables_for,
)
from devenv.config import defaults
from devenv.model import CheckResult, Profile

if TYPE_CHECKING:
    import httpx

    from devenv.checks.spec import Contract

IGNITION_CONTRACT = "ignition.toml"
REFERENCE_CONTRACT = "reference.toml"


def contract_file(root: Path, profile: Profile) -> Path:
    """The profile's `services.backend.contract`; else the reference backend's contract when the
    profile runs the repository's own backend, else the real service's."""
    backend = profile.binding("backend")
    chosen = backend.settings.get("contract")
    if chosen:
        return Path(chosen) if Path(chosen).is_absolute() else root / chosen
    own = backend.provider == "local" and not (
        backend.settings.get("context") or backend.settings.get("image")
    )
    return defaults.contract_file(root, REFERENCE_CONTRACT if own else IGNITION_CONTRACT)


def run_contract_checks(
    contract: Contract,
    base_url: str,
    *,
    bypass_expected: bool,
    object_exists: ObjectExists | None,
    running: Mapping[str, CheckResult] | None = None,
    timeout: float = 5.0,
    transport: httpx.BaseTransport | None = None,
    new_uuid: Callable[[str], str] | None = None,
) -> list[CheckResult]:
    """Every check of the contract, concurrently; results in the contract's order.

    Connection errors and unexpected answers become failed checks, never exceptions. `new_uuid`
    (check id -> text) makes the generated variables reproducible for recorded answers.
    """
    import httpx  # imported here to keep `devenv --help` fast

    # One pooled transport, created once (it holds the TLS context, which is slow to build);
    # trust_env off: a proxy from the environment must not intercept loopback requests.
    shared = transport or httpx.HTTPTransport(trust_env=False)
    selected = contract.select(bypass=bypass_expected)

    def one(index: int) -> CheckResult:
        sel = selected[index]
        # A client per check, so the signout probe's Set-Cookie cannot leak into the others.
        # Not closed here: closing a client closes the shared transport.
        client = httpx.Client(base_url=base_url, timeout=timeout, transport=shared, trust_env=False)
        ident = new_uuid(sel.id) if new_uuid else str(uuid.uuid4())
        return run_check(
            sel,
            send=_sender(client),
            object_exists=object_exists,
            variables=variables_for(contract.variables, ident),
            running=running,
        )

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(selected)))) as pool:
            return list(pool.map(one, range(len(selected))))
    finally:
        if transport is None:
            shared.close()


def _sender(client: httpx.Client) -> Callable[[Request], Recorded]:
    import httpx

    def send(request: Request) -> Recorded:
        extra: dict[str, Any] = {}
        if request.json is not None:
            extra["json"] = request.json
        if request.files:
            extra["files"] = {
                f.field: (f.filename, f.content.encode(), f.content_type) for f in request.files
            }
        if request.form:
            extra["data"] = dict(request.form)
        try:
            answer = client.request(
                request.method, request.path, headers=dict(request.headers), **extra
            )
        except httpx.HTTPError as exc:
            got = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise TransportError(got) from exc
        headers = {name.lower(): value for name, value in answer.headers.items()}
        return Recorded(answer.status_code, headers, answer.content)

    return send
