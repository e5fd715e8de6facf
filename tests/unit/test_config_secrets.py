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


ODD = "Zq8&Secret'pw\"<x>\\y"


def test_a_secret_is_masked_however_html_json_or_a_url_spells_it() -> None:
    import html
    import json
    from urllib.parse import quote
    from xml.sax.saxutils import quoteattr

    from markupsafe import escape

    spellings = [
        ODD,
        html.escape(ODD),
        html.escape(ODD, quote=False),
        str(escape(ODD)),
        quoteattr(ODD)[1:-1],
        json.dumps(ODD)[1:-1],
        quote(ODD, safe=""),
    ]
    out = redact(" | ".join(spellings), [ODD])
    assert "Zq8" not in out
    assert out == " | ".join(["****"] * len(spellings))


def test_one_secret_name_pattern_for_profiles_environment_and_plugin() -> None:
    from devenv.config.profiles import secret_env_name
    from devenv.config.secrets import Secrets, secret_name

    for name in ("R2_SECRET_ACCESS_KEY", "API_TOKEN", "DB_PASSWORD", "SIGNING_KEY", "SENTRY_DSN",
                 "OAUTH_CLIENT_CREDENTIAL", "PRIVATE_PEM", "PASSWD", "s3_secret_key"):  # fmt: skip
        assert secret_name(name), name
        assert secret_env_name(name), name
    for name in ("PATH", "HOME", "RUST_LOG", "DEVENV_PROJECT", "backend_url"):
        assert not secret_name(name), name
    secrets = Secrets()
    secrets.add_environ({"SIGNING_KEY": "sk-0123456789", "SENTRY_DSN": "https://k@o.example/1"})
    assert secrets.redact("sk-0123456789 https://k@o.example/1") == "**** ****"


def test_redact_data_redacts_strings_inside_structures_and_dataclasses() -> None:
    from devenv.config.secrets import redact_data
    from devenv.model import CheckResult

    data: dict[str, object] = {"a": [f"x {ODD}", 1, None], "b": (ODD,)}
    out = redact_data(data, lambda t: redact(t, [ODD]))
    assert out == {"a": ["x ****", 1, None], "b": ("****",)}
    check = redact_data(CheckResult("id", "name", False, f"got {ODD}"), lambda t: redact(t, [ODD]))
    assert (check.id, check.detail) == ("id", "got ****")


def test_a_secret_cut_short_or_reflowed_by_a_one_line_detail_is_masked_too() -> None:
    from devenv.checks.services import one_line

    secret = "Zq8-very-long secret\tvalue-0123456789"
    cut = one_line("x" * 200 + " ERROR: password " + secret)  # 240 characters at most
    assert cut.endswith("…")
    assert redact(cut, [secret]).endswith(" ERROR: password ****…")
    assert "Zq8" not in redact(cut, [secret])
    assert redact(one_line(f"got {secret} here"), [secret]) == "got **** here"
    assert redact(repr(f"a {ODD}"), [ODD]) == "'a ****'"
    # a cut that follows no secret is left alone, and short prefixes do not count
    assert redact("building ...", [secret]) == "building ..."
    assert redact("see Zq8…", [secret]) == "see Zq8…"
