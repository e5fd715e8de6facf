"""Which image each service runs, decided from images and registry answers already looked up:
present, else pulled, else built from a stand-in recipe. Pure naming and choice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from devenv.images.identity import BASE_TAG, SLIM
from devenv.images.registry import (
    image_identity,
    pg_major_from_tag,
    pulled_identity,
    registry_of,
    verdict,
    why_not,
)
from devenv.model import ImageChoice, PullPolicy
from devenv.runtime.base import LABEL_RECIPE_HASH, ImageInfo, RegistryAnswer

DEFAULT_PG_MAJOR = "15"  # the Postgres stand-in recipe's major version
Images = Mapping[str, ImageInfo | None]
Answers = Mapping[str, RegistryAnswer]


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


# --- the base the recipes build on ---------------------------------------------------------


@dataclass(frozen=True)
class HostFacts:
    """What this host offers for building the offline base: root, and which tools."""

    root: bool = True
    tools: frozenset[str] = frozenset()  # found on PATH, among BASE_TOOLS
    subids: bool = False  # /etc/subuid and /etc/subgid give this user ranges
    s3s_built: bool = False  # the S3 stand-in's server is in the cache (no cargo needed)


BASE_TOOLS = ("debootstrap", "mmdebstrap", "newuidmap", "newgidmap", "cargo")
ROOTLESS_HINT = (
    "install mmdebstrap and uidmap (`sudo apt-get install mmdebstrap uidmap`) and give "
    "this user subordinate ids (`sudo usermod --add-subuids 100000-165535 --add-subgids "
    "100000-165535 $USER`) to build it without root, or let a registry serve "
    f"{SLIM} (without --pull never)"
)


def base_method(host: HostFacts) -> tuple[str | None, str]:
    """How this host builds the debootstrapped base, or (None, what to do) when it cannot."""
    if host.root:
        if "debootstrap" in host.tools:
            return "debootstrap", ""
        if "mmdebstrap" in host.tools:
            return "mmdebstrap", ""
        return None, "install debootstrap (`apt-get install debootstrap`), then run again"
    rootless = {"mmdebstrap", "newuidmap", "newgidmap"} <= host.tools
    if rootless and host.subids:
        return "mmdebstrap --mode=unshare", ""
    return None, ROOTLESS_HINT


@dataclass(frozen=True)
class BaseChoice:
    """The image the recipes start FROM: debian:bookworm-slim when present or pullable,
    else the base debootstrapped here (built by `method`, None: this host cannot)."""

    ref: str
    present: bool
    pull: bool = False
    why: str = ""
    method: str | None = None
    hint: str = ""  # what to do when it must be built and cannot


def provisional_base(images: Images) -> str:
    """The base identities are computed on before the registry is asked: the slim image
    when the engine has it, else the debootstrapped one."""
    return SLIM if images.get(SLIM) is not None else BASE_TAG


def choose_base(
    images: Images, registry: Answers, *, policy: PullPolicy, host: HostFacts
) -> BaseChoice:
    slim = images.get(SLIM)
    answer = registry.get(SLIM)
    fresh = answer is not None and verdict(answer) == "ok"
    if slim is not None and not (
        policy == "always" and fresh and answer and image_identity(slim, SLIM) != answer.digest
    ):
        return BaseChoice(SLIM, present=True, why=f"{SLIM} present")
    if fresh and policy in ("missing", "always"):
        why = f"{SLIM} is older than its registry's" if slim else f"{SLIM} missing"
        return BaseChoice(SLIM, present=False, pull=True, why=why)
    if images.get(BASE_TAG) is not None:
        return BaseChoice(BASE_TAG, present=True, why=f"{BASE_TAG} present")
    if answer is not None:
        why = why_not(answer) if verdict(answer) != "unreachable" else unreachable(answer)
    else:
        why = "--pull never" if policy == "never" else f"{SLIM} was not looked up"
    method, hint = base_method(host)
    return BaseChoice(BASE_TAG, present=False, why=why, method=method, hint=hint)


def unreachable(answer: RegistryAnswer) -> str:
    """Short: the error itself is said once per run, in the plan's notes."""
    return f"registry {registry_of(answer.ref)} unreachable"


# --- one service ---------------------------------------------------------------------------


def lookup_wanted(
    images: Images,
    *,
    ref: str,
    standin: str | None,
    recipe: str | None,
    identity: str | None,
    policy: PullPolicy,
    current_image: str | None = None,
) -> bool:
    """Whether `choose` needs the registry's answer about `ref` (the observation asks)."""
    if recipe == "backend" or policy in ("never", "build"):
        return False
    if policy == "always":
        return True
    if images.get(ref) is not None:
        return False
    if standin is None or recipe is None or identity is None:
        return True
    return not _fresh(images.get(standin), identity) and current_image != standin


def build_wanted(
    images: Images,
    *,
    ref: str,
    standin: str | None,
    recipe: str | None,
    identity: str | None,
    policy: PullPolicy,
) -> bool:
    """Whether `choose` may end with a recipe build (the observation then asks the registry
    about the slim base too): nothing usable is present."""
    if recipe is None or standin is None or identity is None:
        return False
    tag = standin_ref(standin, recipe, identity)
    if _fresh(images.get(tag), identity):
        return False
    return recipe == "backend" or policy == "build" or images.get(ref) is None


def _fresh(found: ImageInfo | None, identity: str) -> bool:
    return found is not None and found.labels.get(LABEL_RECIPE_HASH) == identity


def choose(
    images: Images,
    *,
    ref: str,
    standin: str | None,
    recipe: str | None,
    identity: str | None,
    policy: PullPolicy = "missing",
    registry: Answers | None = None,
    base: BaseChoice | None = None,
    current_image: str | None = None,
) -> ImageChoice:
    """Present, else pulled, else built. The compose image when the engine has it; else a
    stand-in already built from the current recipe; else the compose image pulled when its
    registry has it (`policy` missing or always); else the stand-in built on `base`.

    `always` pulls even a present image unless the registry has the same digest. A stand-in
    whose container runs now is rebuilt rather than swapped for the pulled image under the
    same data. Under `build` the compose image is never used."""
    answer = (registry or {}).get(ref)
    if recipe != "backend" and policy != "build":
        compose = _compose_image(images.get(ref), ref, recipe, answer, policy)
        if compose is not None:
            return compose
    if standin is None or recipe is None or identity is None:
        if answer is not None and _pullable(answer, policy):
            return _pulled(ref, recipe, answer, why=f"{ref} missing")
        return ImageChoice(ref=ref, identity=ref, present=False, why=_no_pull(answer, policy))
    tag = standin_ref(standin, recipe, identity)
    found = images.get(tag)
    pg_major = found.env.get("PG_MAJOR") if found is not None else None
    made = ImageChoice(
        ref=tag,
        identity=identity,
        present=_fresh(found, identity),
        recipe=recipe,
        pg_major=pg_major or (DEFAULT_PG_MAJOR if recipe == "postgres" else None),
        base=base.ref if base is not None else BASE_TAG,
    )
    return _standin(made, ref, answer, policy, current_image)


def _standin(
    made: ImageChoice,
    ref: str,
    answer: RegistryAnswer | None,
    policy: PullPolicy,
    current_image: str | None,
) -> ImageChoice:
    """The stand-in when present or in use, else the compose image pulled, else the build."""
    tag = made.ref
    if made.recipe == "backend":
        missing = f"image {tag} missing: build recipe backend"
        return _with(made, f"{tag} present" if made.present else missing)
    if made.present:
        return _with(made, f"stand-in {tag} present")
    if current_image == tag:
        return _with(made, f"the container runs stand-in {tag}, whose recipe changed: rebuild it")
    if answer is not None and _pullable(answer, policy):
        return _pulled(ref, made.recipe, answer, why=f"{ref} missing")
    return _with(made, f"{_no_pull(answer, policy)}: building the stand-in {tag}")


def _compose_image(
    found: ImageInfo | None,
    ref: str,
    recipe: str | None,
    answer: RegistryAnswer | None,
    policy: PullPolicy,
) -> ImageChoice | None:
    """The compose image when it is (or, under `always`, is pulled) up to date; else None."""
    ok = answer is not None and verdict(answer) == "ok"
    if policy == "always" and answer is not None and ok:
        if found is None:
            return _pulled(ref, recipe, answer, why=f"pull policy always: {ref} missing")
        if image_identity(found, ref) != answer.digest:
            return _pulled(ref, recipe, answer, why=f"{ref} is older than its registry's")
    if found is None:
        return None
    why = f"{ref} present"
    if policy == "always" and answer is not None:
        why = f"{ref} is what its registry has" if ok else f"{_no_pull(answer, policy)}"
        why += "" if ok else f": keeping the present {ref}"
    return ImageChoice(
        ref=ref,
        identity=image_identity(found, ref),
        present=True,
        pg_major=found.env.get("PG_MAJOR"),
        why=why,
    )


def _pullable(answer: RegistryAnswer | None, policy: PullPolicy) -> bool:
    return answer is not None and verdict(answer) == "ok" and policy in ("missing", "always")


def _with(choice: ImageChoice, why: str) -> ImageChoice:
    return replace(choice, why=why)


def _pulled(ref: str, recipe: str | None, answer: RegistryAnswer, *, why: str) -> ImageChoice:
    return ImageChoice(
        ref=ref,
        identity=pulled_identity(answer),
        present=False,
        pull=True,
        pg_major=pg_major_from_tag(ref) if recipe == "postgres" else None,
        why=why,
    )


def _no_pull(answer: RegistryAnswer | None, policy: PullPolicy) -> str:
    """Why the compose image is not pulled."""
    if policy in ("never", "build"):
        return f"pull policy {policy}"
    if answer is None:
        return "registry not asked"
    return unreachable(answer) if verdict(answer) == "unreachable" else why_not(answer)
