"""Which image each service runs, decided from images already looked up: pure naming and choice."""

from __future__ import annotations

from collections.abc import Mapping

from devenv.model import ImageChoice
from devenv.runtime.base import LABEL_RECIPE_HASH, ImageInfo

DEFAULT_PG_MAJOR = "15"  # the Postgres stand-in recipe's major version


def backend_tag(standin: str, identity: str) -> str:
    """One tag per source fingerprint: reverting an edit reuses its image, and two checkouts
    with different backend code never rebuild over each other."""
    repo = standin.rsplit(":", 1)[0] if ":" in standin.rsplit("/", 1)[-1] else standin
    return f"{repo}:src-{identity[:12]}"


def standin_ref(standin: str, recipe: str, identity: str) -> str:
    return backend_tag(standin, identity) if recipe == "backend" else standin


def candidate_refs(
    *, ref: str, standin: str | None, recipe: str | None, identity: str | None
) -> list[str]:
    """The references `choose` looks at, for the observation to inspect."""
    refs = [] if recipe == "backend" else [ref]
    if standin is not None and recipe is not None and identity is not None:
        refs.append(standin_ref(standin, recipe, identity))
    return refs


def choose(
    images: Mapping[str, ImageInfo | None],
    *,
    ref: str,
    standin: str | None,
    recipe: str | None,
    identity: str | None,
) -> ImageChoice:
    """Prefer the compose image when it is already present; else the matching stand-in."""
    if recipe != "backend":
        found = images.get(ref)
        if found is not None:
            return ImageChoice(
                ref=ref, identity=found.id, present=True, pg_major=found.env.get("PG_MAJOR")
            )
    if standin is None or recipe is None or identity is None:
        return ImageChoice(ref=ref, identity=ref, present=False, recipe=None)
    tag = standin_ref(standin, recipe, identity)
    found = images.get(tag)
    present = found is not None and found.labels.get(LABEL_RECIPE_HASH) == identity
    pg_major = found.env.get("PG_MAJOR") if found is not None else None
    if recipe == "postgres" and pg_major is None:
        pg_major = DEFAULT_PG_MAJOR
    return ImageChoice(
        ref=tag, identity=identity, present=present, recipe=recipe, pg_major=pg_major
    )
