"""Project roots, observations and fake adapters for unit tests of plans and use cases."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devenv.app import Adapters
from devenv.config.load import Config, Options, load_config
from devenv.images.choice import standin_ref
from devenv.images.identity import BASE_TAG
from devenv.observe import MigrationFacts, Observation, PortFacts, observe_images
from devenv.runtime.base import LABEL_RECIPE_HASH, ImageInfo, Observed
from devenv.runtime.fake import FakeClients, FakeRuntime
from devenv.snapshot.model import GoldenFacts
from devenv.state import StateFile

REPO = Path(__file__).resolve().parents[2]
FRESH = {"postgres_password": "pw-postgres-0001", "storage_access_key": "ak0001",
         "storage_secret_key": "sk-secret-0001"}  # fmt: skip
PORTS = {"postgres": 5432, "objectstore": 9000, "backend": 8080}


def make_root(dest: Path, *, compose: str | None = None) -> Path:
    """A project root: the compose file (or `compose`), profiles and contracts copied, the
    image recipes and the reference backend linked (read only)."""
    (dest / "compose").mkdir(parents=True, exist_ok=True)
    text = compose if compose is not None else (REPO / "compose" / "compose.yaml").read_text()
    (dest / "compose" / "compose.yaml").write_text(text, encoding="utf-8")
    (dest / "compose" / "images").symlink_to(REPO / "compose" / "images")
    (dest / "backend").symlink_to(REPO / "backend")
    shutil.copytree(REPO / "profiles", dest / "profiles")
    shutil.copytree(REPO / "contracts", dest / "contracts")
    return dest


IDENTITIES = {"postgres": "pg0123456789abcd", "objectstore": "os0123456789abcd",
              "backend": "be0123456789abcd"}  # fmt: skip


def images_for(
    config: Config, identities: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, ImageInfo | None]]:
    """Every stand-in image present, labelled with its identity (as observed, unless given)."""
    known = dict(identities or observe_images(config, FakeRuntime()).identities)
    found: dict[str, ImageInfo | None] = {
        BASE_TAG: ImageInfo(f"sha256:{BASE_TAG}", (BASE_TAG,), {}, {})
    }
    for svc in config.project.services:
        if svc.standin is None or svc.name not in known:
            continue
        ref = standin_ref(svc.standin.image, svc.standin.recipe, known[svc.name])
        env = {"PG_MAJOR": "15"} if svc.name == "postgres" else {}
        found[ref] = ImageInfo(
            f"sha256:{svc.name}", (ref,), {LABEL_RECIPE_HASH: known[svc.name]}, env
        )
    return known, found


def observation(
    config: Config,
    *,
    engine: Observed | None = None,
    state: StateFile | None = None,
    images: bool = True,
    free: bool = True,
    bucket: bool | None = None,
    migrations: MigrationFacts | None = None,
    claimed_image: str | None = None,
    mine: tuple[int, ...] = (),
    golden: GoldenFacts | None = None,
) -> Observation:
    """The facts of a fresh project (or as given), without any I/O but hashing the recipes."""
    identities, found = images_for(config, IDENTITIES)
    if not images:
        found = {}
    state = state or StateFile(config.options.root / ".devenv" / config.name / "state.json")
    fresh = {k: v for k, v in FRESH.items() if not state.credentials.get(k)}
    ports = PortFacts(
        free=dict.fromkeys({*PORTS.values(), *state.ports.values()}, free),
        spare=(41001, 41002, 41003),
        mine=mine,
        claimed_at=1000.0 if mine else None,
    )
    return Observation(
        engine=engine or Observed(),
        state=state,
        fresh=fresh,
        images=found,
        identities=identities,
        ports=ports,
        image_claim=claimed_image,
        migrations=migrations or MigrationFacts(why="not compared in this test"),
        bucket=bucket,
        golden=golden or GoldenFacts(),
        now=1000.0,
    )


def options(root: Path, project: str = "t", **environ: str) -> Options:
    return Options(root=root, project=project, environ=dict(environ))


@dataclass
class Fakes:
    """A fake engine (with every stand-in image present) and fake services, one journal."""

    runtime: FakeRuntime
    clients: FakeClients

    @property
    def journal(self) -> list[str]:
        return self.runtime.journal

    @property
    def adapters(self) -> Adapters:
        return Adapters(runtime=lambda: self.runtime, clients=self.clients)

    def index(self, line: str) -> int:
        return self.journal.index(line)


def fakes(options: Options, answers: Mapping[str, str | int] | None = None) -> Fakes:
    journal: list[str] = []
    runtime = FakeRuntime(journal)
    _, found = images_for(load_config(options))
    for ref, info in found.items():
        if info is not None:
            runtime.images[ref] = info
    clients = FakeClients(journal=journal, answers=dict(answers or {}))
    return Fakes(runtime, clients)
