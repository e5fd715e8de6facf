"""The glibc a host-built binary needs (its ELF version needs) and the glibc an image has."""

from __future__ import annotations

import re
from pathlib import Path

Version = tuple[int, ...]
_GLIBC = re.compile(r"GLIBC_(\d+(?:\.\d+)+)")


def parse_version(text: str) -> Version | None:
    """``2.36`` or ``2.36-9+deb12u14`` -> (2, 36); None when it does not start with x.y."""
    found = re.match(r"(\d+(?:\.\d+)+)", text.strip())
    return tuple(int(p) for p in found.group(1).split(".")) if found else None


def show(version: Version) -> str:
    return ".".join(str(p) for p in version)


def required_glibc(binary: Path) -> Version | None:
    """The highest ``GLIBC_x.y`` the ELF's version-needs section asks for; None when it asks
    for none (a static or musl binary). Raises ValueError when the file is not an ELF."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    best: Version | None = None
    with binary.open("rb") as fh:
        try:
            elf = ELFFile(fh)
            sections = [s for s in elf.iter_sections() if isinstance(s, GNUVerNeedSection)]
            for section in sections:
                for _need, auxiliaries in section.iter_versions():
                    for aux in auxiliaries:
                        found = _GLIBC.fullmatch(str(aux.name))
                        if found:
                            version = tuple(int(p) for p in found.group(1).split("."))
                            best = version if best is None or version > best else best
        except ELFError as exc:
            raise ValueError(f"{binary.name} is not an ELF executable: {exc}") from exc
    return best


def glibc_from_dpkg_status(text: str) -> Version | None:
    """The installed libc6 version from a Debian ``/var/lib/dpkg/status`` file."""
    for stanza in text.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[:1] != " "
        )
        if fields.get("Package", "").strip() == "libc6" and "Version" in fields:
            return parse_version(fields["Version"])
    return None
