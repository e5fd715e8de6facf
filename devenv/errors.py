"""The exception roots of devenv, and the exit code of each handled failure or interrupt.

Handled (BaseException)          what the CLI turns into "Kind: message" + hint, no traceback
├── DevenvError (Exception)      a failure devenv handles and explains
│   ├── UsageError       (2)     an argument is malformed, out of range or names a place that
│   │                             cannot be written (checked before any work)
│   ├── ConfigError      (3)     a compose file, profile, registry or flag is wrong
│   │   └── MissingSecretError   a ${VAR} reference has no value
│   ├── EngineError      (11)    the Docker engine refused or failed a request, or timed out
│   │   └── DockerUnavailableError (4) the engine cannot be reached at all
│   ├── ImageError       (5)     an image is missing and could not be pulled or built
│   ├── PortConflictError (6)    a host port is taken and --strict-ports was given
│   ├── ReadinessError   (7)     a service did not become healthy (timeout or crash loop)
│   ├── LockedError      (8)     another devenv holds this project's lock
│   ├── RefusedError     (9)     an unsafe action was refused (bypass vs protected provider,
│   │                             data-directory major version, a database migrated by another
│   │                             backend source, deleting data unconfirmed)
│   ├── ProviderError    (10)    an external provider answered wrongly or not at all
│   ├── ChecksFailedError (1)    a required check failed (`check`, `report`), or a phase the
│   │                             registry marks complete regressed (`report`)
│   └── UnhealthyError   (1)     `status`: a service is not running or not healthy
└── Interrupted          (130)   SIGINT or SIGTERM: the lock is released, the next `up` adopts
                                  the rest

An interrupt is not a failure of the work it stops, so it is no DevenvError (nor an
Exception): like KeyboardInterrupt, it passes every `except DevenvError` (a step's, a cycle's)
up to whoever ends the command. Adapters translate third-party exceptions into these with
``raise ... from exc``; anything else that escapes is a bug: the CLI prints one line naming the
log file that holds its traceback and exits INTERNAL_ERROR (70, sysexits' EX_SOFTWARE). The
roots themselves are never raised: exit code 1 means "checks failed" or "unhealthy", nothing
else.
"""

from __future__ import annotations


class Handled(BaseException):
    """Base of what the CLI reports in one line and an exit code: a failure or an interrupt."""

    exit_code = 1
    kind = "Error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The whole error as the single line the CLI prints."""
        text = f"{self.kind}: {self.message}"
        if self.hint:
            text += f" (fix: {self.hint})"
        return text


INTERNAL_ERROR = 70


class DevenvError(Handled, Exception):
    """Base of every failure devenv handles and explains."""


class UsageError(DevenvError):
    exit_code = 2
    kind = "Usage error"


class ConfigError(DevenvError):
    exit_code = 3
    kind = "Config error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if file and key:
            where = f"{file}: {key}: "
        elif file:
            where = f"{file}: "
        elif key:
            where = f"{key}: "
        super().__init__(where + message, hint=hint)
        self.file = file
        self.key = key


class MissingSecretError(ConfigError):
    kind = "Missing secret"


class EngineError(DevenvError):
    exit_code = 11
    kind = "Engine error"


class DockerUnavailableError(EngineError):
    exit_code = 4
    kind = "Docker unavailable"


class ImageError(DevenvError):
    exit_code = 5
    kind = "Image error"


class PortConflictError(DevenvError):
    exit_code = 6
    kind = "Port conflict"


class ReadinessError(DevenvError):
    exit_code = 7
    kind = "Not ready"

    def __init__(self, message: str, *, hint: str | None = None, details: str = "") -> None:
        super().__init__(message, hint=hint)
        self.details = details


class LockedError(DevenvError):
    exit_code = 8
    kind = "Busy"


class RefusedError(DevenvError):
    exit_code = 9
    kind = "Refused"


class ProviderError(DevenvError):
    exit_code = 10
    kind = "Provider error"


class ChecksFailedError(DevenvError):
    exit_code = 1
    kind = "Checks failed"


class UnhealthyError(DevenvError):
    exit_code = 1
    kind = "Unhealthy"


class Interrupted(Handled):
    """Raised in the main thread by the SIGINT (and SIGTERM) handler, wherever it is."""

    exit_code = 130
    kind = "Interrupted"
