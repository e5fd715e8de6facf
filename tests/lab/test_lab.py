"""The lab itself is what the other lab tests assume: a user without root or cargo, an engine
that pulls Docker Hub names through the mirror."""

from __future__ import annotations

from tests.lab import lab


def test_the_user_has_no_root_and_no_cargo(lab_ready: lab.LabEngine) -> None:
    proc = lab.as_user("id -u; command -v cargo || echo no-cargo", cwd=lab.home())
    assert proc.returncode == 0, proc.stderr
    uid, cargo = proc.stdout.split()
    assert uid != "0"
    assert cargo == "no-cargo"


def test_the_engine_answers_the_user_and_pulls_through_the_mirror(lab_ready: lab.LabEngine) -> None:
    proc = lab.as_user("docker info --format '{{json .RegistryConfig.Mirrors}}'", cwd=lab.home())
    assert proc.returncode == 0, proc.stderr
    assert "10.99.0.1:5000" in proc.stdout
