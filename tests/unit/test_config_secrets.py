"""mask_url and redact: secrets never reach output."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devenv.config.secrets import has_userinfo, mask_url, redact


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgres://app:s3cret@db.example.com:5432/ignition",
            "postgres://app:****@db.example.com:5432/ignition",
        ),
        (
            "postgresql://app:p%40ss@10.0.0.5/db?sslmode=require&password=x",
            "postgresql://app:****@10.0.0.5/db?sslmode=require&password=****",
        ),
        ("postgres://app@db:5432/db", "postgres://app@db:5432/db"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://u:p@[::1]:8443/x#frag", "https://u:****@[::1]:8443/x"),
        ("not a url", "****"),
        ("", "****"),
        ("http://[broken", "****"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_has_userinfo() -> None:
    assert has_userinfo("https://u:p@h/")
    assert not has_userinfo("https://h/")
    assert not has_userinfo("garbage")


def test_redact_removes_secrets_and_url_passwords() -> None:
    url = "postgres://app:p%40ss@db:5432/ig"
    text = f"connect {url} failed: password authentication for p@ss; key AKID123 rejected"
    out = redact(text, [url, "AKID123", ""])
    assert "p%40ss" not in out
    assert "p@ss" not in out
    assert "AKID123" not in out
    assert out.startswith("connect **** failed")


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_mask_url_never_raises_and_never_shows_password(url: str) -> None:
    masked = mask_url(url)
    assert isinstance(masked, str)
    assert "hunter2" not in mask_url(f"postgres://u:hunter2@{url}")


def test_redact_leaves_too_short_fragments_alone() -> None:
    from devenv.config.secrets import redact

    assert redact("profile postgres", ["p"]) == "profile postgres"
    assert redact("password=hunter2 profile", ["hunter2", "p"]) == "password=**** profile"
