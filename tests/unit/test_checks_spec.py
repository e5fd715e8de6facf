"""Contract files: the shipped ones are valid and agree with the id vocabulary; each kind of
mistake is one ConfigError naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.checks import ids
from devenv.checks.contract import contract_file
from devenv.checks.spec import Expect, load_contract, parse_contract
from devenv.config.defaults import packaged_root
from devenv.errors import ConfigError
from devenv.model import Profile, ProviderBinding

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"

MINIMAL = """
[[check]]
id = "route.root"
name = "GET /"
[[check.step]]
path = "/"
status = 200
"""


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_contract(text, file="c.toml")
    assert caught.value.file == "c.toml"
    assert "\n" not in caught.value.one_line()
    return caught.value


# --- the shipped contracts ------------------------------------------------------------------


def test_ignition_contract_defines_the_vocabulary_the_registry_uses() -> None:
    contract = load_contract(CONTRACTS / "ignition.toml")
    assert contract.ids() == tuple(ids.CONTRACT_CHECKS)
    for check in contract.checks:
        assert check.name == ids.CONTRACT_CHECKS[check.id], check.id
        assert check.why, f"{check.id} says why it exists"


def test_every_check_answers_in_both_bypass_modes() -> None:
    contract = load_contract(CONTRACTS / "ignition.toml")
    for bypass in (True, False):
        selected = contract.select(bypass=bypass)
        assert [s.id for s in selected] == list(ids.CONTRACT_CHECKS)
    skipped = [s.id for s in contract.select(bypass=False) if s.spec is None]
    assert skipped == [ids.BLOB_ROUNDTRIP]


def test_default_levels_and_the_reference_contract_only_raises_them() -> None:
    real = {c.id: c.level for c in load_contract(CONTRACTS / "ignition.toml").checks}
    reference = load_contract(CONTRACTS / "reference.toml")
    strict = {c.id: c.level for c in reference.checks}
    advisory = {cid for cid, level in real.items() if level == "advisory"}
    assert advisory == {ids.ROUTE_API_FOREIGN_HOST, ids.MIDDLEWARE_CSRF_AUTH_SCOPE}
    assert set(strict.values()) == {"required"}
    assert reference.chain[-1].endswith("reference.toml")
    assert len(reference.chain) == 2


def test_contract_choice_follows_the_profile(tmp_path: Path) -> None:
    def profile(**settings: str) -> Profile:
        provider = "external" if "url" in settings else "local"
        backend = ProviderBinding("backend", provider, False, settings)  # type: ignore[arg-type]
        return Profile("p", None, {"backend": backend}, dev_bypass=True)

    # a project without contracts/ gets devenv's packaged ones, one with its own gets those
    packaged = packaged_root() / "contracts"
    assert contract_file(tmp_path, profile()) == packaged / "reference.toml"
    assert contract_file(tmp_path, profile(image="ignition-api:main")) == packaged / "ignition.toml"
    (tmp_path / "contracts").mkdir()
    for name in ("reference.toml", "ignition.toml"):
        (tmp_path / "contracts" / name).write_text("", encoding="utf-8")
    assert contract_file(tmp_path, profile()) == tmp_path / "contracts" / "reference.toml"
    real = tmp_path / "contracts" / "ignition.toml"
    assert contract_file(tmp_path, profile(context="/src/app/backend")) == real
    assert contract_file(tmp_path, profile(image="ignition-api:main")) == real
    assert contract_file(tmp_path, profile(url="http://127.0.0.1:9")) == real
    mine = tmp_path / "mine.toml"
    assert contract_file(tmp_path, profile(contract=str(mine))) == mine


# --- shapes that parse ------------------------------------------------------------------------


def test_expectations_flows_and_variables_parse() -> None:
    contract = parse_contract(
        """
[vars]
origin = "http://localhost:3000"

[[check]]
id = "blob.flow"
name = "Flow"
needs = ["backend", "objectstore"]
level = "advisory"
when = "bypass"
[[check.step]]
method = "POST"
path = "/up"
headers = { Origin = "${origin}" }
multipart = { file = { content = "${payload}" }, note = "plain" }
status = [200, 201]
expect = [{ any = [{ field = "a", equals = 1 }, { header = "X-Thing", present = true }] }]
capture = { id = "id" }
[[check.step]]
object = "${id}"
present = false
[[check.cleanup]]
method = "DELETE"
path = "/up/${id}"
"""
    )
    (check,) = contract.checks
    assert (check.level, check.when, check.needs) == (
        "advisory",
        "bypass",
        ("backend", "objectstore"),
    )
    first, second = check.steps
    assert first.status == (200, 201)
    assert first.form == (("note", "plain"),)
    assert first.files[0].field == "file"
    assert first.files[0].filename == "devenv-probe.txt"
    assert first.expect[0].alternatives == (
        Expect("field", "a", "equals", 1),
        Expect("header", "x-thing", "present", True),
    )
    assert second.is_bucket
    assert not second.present
    assert check.cleanup[0].path == "/up/${id}"


# --- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        pytest.param("[[check]\n", None, "invalid TOML", id="toml"),
        pytest.param("titel = 1\n" + MINIMAL, "titel", "unknown key", id="top-key"),
        pytest.param(
            MINIMAL.replace('name = "GET /"', 'nmae = "GET /"'),
            "check → route.root → nmae",
            "did you mean `name`",
            id="check-key-did-you-mean",
        ),
        pytest.param(
            MINIMAL.replace("status = 200", "stauts = 200"),
            "check → route.root → step[0] → stauts",
            "did you mean `status`",
            id="step-key-did-you-mean",
        ),
        pytest.param(
            MINIMAL.replace("status = 200", 'status = "200"'),
            "check → route.root → step[0] → status",
            "expected an HTTP status (100-599), got '200'",
            id="status-type",
        ),
        pytest.param(
            MINIMAL.replace("status = 200", "status = [200, 999]"),
            "check → route.root → step[0] → status[1]",
            "got 999",
            id="status-range",
        ),
        pytest.param(
            MINIMAL + 'level = "advisory"\n',  # TOML puts it in the step table
            "check → route.root → step[0] → level",
            "unknown key",
            id="level-in-step-table",
        ),
        pytest.param(
            MINIMAL.replace('name = "GET /"', 'name = "GET /"\nlevel = "requird"'),
            "check → route.root → level",
            "did you mean `required`",
            id="level-value",
        ),
        pytest.param(
            MINIMAL.replace('name = "GET /"', 'name = "GET /"\nneeds = ["backnd"]'),
            "check → route.root → needs[0]",
            "did you mean `backend`",
            id="needs-service",
        ),
        pytest.param(
            MINIMAL.replace('name = "GET /"', 'name = "GET /"\nwhen = "always"'),
            "check → route.root → when",
            "unknown value 'always'",
            id="when-value",
        ),
        pytest.param(
            MINIMAL.replace('path = "/"', 'path = "/${uid}"'),
            "check → route.root → step[0] → path",
            "unknown variable ${uid}; did you mean `uuid`",
            id="unknown-variable",
        ),
        pytest.param(
            MINIMAL.replace('path = "/"', 'path = "health"'),
            "check → route.root → step[0] → path",
            "starting with '/'",
            id="relative-path",
        ),
        pytest.param(
            MINIMAL.replace("status = 200", 'status = 200\nexpect = [{ field = "a" }]'),
            "check → route.root → step[0] → expect[0]",
            "say one of: equals, type, present, contains",
            id="expect-without-op",
        ),
        pytest.param(
            MINIMAL.replace("status = 200", 'expect = [{ field = "a", type = "array" }]'),
            "check → route.root → step[0] → expect[0] → type",
            "unknown value 'array'",
            id="expect-type",
        ),
        pytest.param(
            MINIMAL.replace("status = 200", 'expect = [{ header = "x", contains = "y" }]'),
            "check → route.root → step[0] → expect[0] → contains",
            "a header is compared with a string",
            id="header-contains",
        ),
        pytest.param(
            MINIMAL.replace('path = "/"', 'object = "k"'),
            "check → route.root → step[0] → status",
            "a bucket step takes only object, present",
            id="bucket-step-with-status",
        ),
        pytest.param(
            MINIMAL.replace('path = "/"\nstatus = 200', 'object = "k"'),
            "check → route.root → needs",
            "must list objectstore",
            id="bucket-step-needs-objectstore",
        ),
        pytest.param(
            MINIMAL + MINIMAL,
            "check → route.root",
            "defined twice",
            id="duplicate-id",
        ),
        pytest.param(
            MINIMAL + "[levels]\n'route.rot' = 'advisory'\n",
            "levels → route.rot",
            "did you mean `route.root`",
            id="levels-unknown-id",
        ),
        pytest.param(
            '[vars]\nuuid = "fixed"\n' + MINIMAL,
            "vars → uuid",
            "generated for every run",
            id="builtin-variable",
        ),
        pytest.param('description = "empty"\n', "check", "defines no checks", id="no-checks"),
        pytest.param(
            MINIMAL.replace('id = "route.root"', 'id = "Root"'),
            "check → Root → id",
            "dotted lower-case words",
            id="bad-id",
        ),
    ],
)
def test_each_mistake_names_file_and_key(text: str, key: str | None, message: str) -> None:
    error = error_for(text)
    if key is not None:
        assert error.key == key, error.one_line()
    assert message in error.message, error.one_line()


def test_variants_of_one_id_need_different_when() -> None:
    twice = MINIMAL.replace('name = "GET /"', 'name = "GET /"\nwhen = "bypass"')
    assert parse_contract(twice + twice.replace('"bypass"', '"no_bypass"')).ids() == ("route.root",)
    error = error_for(twice + twice)
    assert "need different `when` values" in error.message


def test_captures_are_known_only_after_their_step() -> None:
    text = MINIMAL.replace('path = "/"', 'path = "/${id}"') + '\n[[check.step]]\npath = "/"\n'
    assert "unknown variable ${id}" in error_for(text).message


# --- files: extends, levels, unreadable -------------------------------------------------------


def test_extends_inherits_and_changes_levels(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(MINIMAL, encoding="utf-8")
    (tmp_path / "strict.toml").write_text(
        'extends = "base.toml"\n[levels]\n"route.root" = "advisory"\n', encoding="utf-8"
    )
    contract = load_contract(tmp_path / "strict.toml", display=lambda p: p.name)
    assert [c.level for c in contract.checks] == ["advisory"]
    assert contract.chain == ("base.toml", "strict.toml")


def test_redefining_an_inherited_check_points_at_levels(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(MINIMAL, encoding="utf-8")
    (tmp_path / "child.toml").write_text('extends = "base.toml"\n' + MINIMAL, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_contract(tmp_path / "child.toml", display=lambda p: p.name)
    assert caught.value.file == "child.toml"
    assert caught.value.hint is not None
    assert "[levels]" in caught.value.hint


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, "extends cycle"),
        ({"a.toml": 'extends = "gone.toml"\n'}, "extends 'gone.toml', which does not exist"),
        ({"a.toml": "extends = 3\n"}, "expected a file name"),
    ],
)
def test_bad_extends(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_contract(tmp_path / "a.toml", display=lambda p: p.name)
    assert message in caught.value.message
    assert caught.value.key == "extends"


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_contract(tmp_path / "nope.toml", display=lambda p: p.name)
    line = caught.value.one_line()
    assert line.startswith("Config error: nope.toml: cannot read the route contract")
    assert "services.backend.contract" in line
