"""The glibc a binary needs, read from its ELF version needs; the glibc an image has."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from devenv.images.elf import glibc_from_dpkg_status, parse_version, required_glibc, show


def _host_binary() -> Path:
    found = shutil.which("true")
    assert found is not None
    return Path(found)


def patched(binary: Path, dest: Path, version: str = "2.99") -> Path:
    """A copy whose highest GLIBC_2.xy need reads GLIBC_<version> (same length)."""
    data = binary.read_bytes()
    names = sorted(set(re.findall(rb"GLIBC_2\.\d\d\x00", data)))
    assert names, "no two-digit GLIBC_2.xy version need to patch"
    replacement = f"GLIBC_{version}".encode() + b"\x00"
    assert len(replacement) == len(names[-1])
    dest.write_bytes(data.replace(names[-1], replacement))
    return dest


def test_a_real_binary_needs_a_glibc_no_newer_than_the_host() -> None:
    needed = required_glibc(_host_binary())
    assert needed is not None
    assert (2, 2) <= needed < (3,)


def test_a_patched_need_is_read_as_the_highest(tmp_path: Path) -> None:
    copy = patched(_host_binary(), tmp_path / "true")
    assert required_glibc(copy) == (2, 99)


def test_not_an_elf(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(ValueError, match=r"run\.sh is not an ELF executable"):
        required_glibc(script)


def test_versions_parse_and_show() -> None:
    assert parse_version("2.36-9+deb12u14") == (2, 36)
    assert parse_version("2.3.4") == (2, 3, 4)
    assert parse_version("unknown") is None
    assert show((2, 36)) == "2.36"


def test_libc6_version_from_dpkg_status() -> None:
    status = (
        "Package: libc-bin\nStatus: install ok installed\nVersion: 2.36-9+deb12u14\n\n"
        "Package: libc6\nStatus: install ok installed\nDescription: GNU C Library\n"
        " continued: line\nVersion: 2.36-9+deb12u14\n\n"
        "Package: zlib1g\nVersion: 1:1.2.13\n"
    )
    assert glibc_from_dpkg_status(status) == (2, 36)
    assert glibc_from_dpkg_status("Package: zlib1g\nVersion: 1\n") is None
