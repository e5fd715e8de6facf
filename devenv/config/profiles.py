"""Resolve a profile: built-in defaults, the TOML chain, a local override, env and flags."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

from devenv.config import defaults
from devenv.config.compose import describe_type, did_you_mean, display_path
from devenv.config.interpolate import interpolate, load_dotenv, one_line
from devenv.config.secrets import MASK, has_userinfo, mask_url, secret_name
from devenv.errors import ConfigError, RefusedError
from devenv.model import SERVICES, Profile, Provider, ProviderBinding

PROVIDERS: tuple[Provider, ...] = ("local", "external")
# provider-specific settings per service; `provider` and `protected` are valid everywhere
SETTINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "postgres": {"local": (), "external": ("url",)},
    "objectstore": {
        "local": ("bucket", "region"),
        "external": ("endpoint", "bucket", "region", "access_key_id", "secret_access_key"),
    },
    # contract: the route-contract file the checks read (relative to the profile, like context)
    "backend": {
        "local": (
            "context",
            "image",
            "migrations",
            "package",
            "binary",
            "locked",
            "contract",
            "watch_profile",
        ),
        "external": ("url", "contract"),
    },
}
# Backend keys that describe building from a source checkout: meaningless with `image`.
BUILD_ONLY = ("package", "binary", "locked", "watch_profile")
WATCH_PROFILES = ("fast", "release", "dev")  # how `devenv watch` builds (README)
ENV_TABLE = "services.backend.env"
# Variables devenv sets on the backend from the stack it made; a profile may not change them.
OWNED_ENV = frozenset(
    ("DATABASE_URL", "AUTH_DEV_BYPASS", "SERVER_ENVIRONMENT", "APP_ENV", "SERVER_HOST",
     "SERVER_PORT", "SERVER_PUBLIC_URL")
)  # fmt: skip
OWNED_ENV_PREFIXES = ("STORAGE_",)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CARGO_NAME = re.compile(r"[A-Za-z0-9_-]+")
REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("postgres", "external"): ("url",),
    ("objectstore", "external"): SETTINGS["objectstore"]["external"],
    ("backend", "external"): ("url",),
}
URL_SCHEMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("postgres", "url"): ("postgres", "postgresql"),
    ("objectstore", "endpoint"): ("http", "https"),
    ("backend", "url"): ("http", "https"),
}
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "auth": ("dev_bypass",),
    "seed": ("enabled", "allow_protected"),
}
TOP_KEYS = ("description", "extends", "auth", "seed", "services")
BUILTIN = "local"
ENV_SELECTOR = "DEVENV_PROFILE"
ENV_PREFIX = "DEVENV_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _service_keys(service: str) -> tuple[str, ...]:
    specific = {k for keys in SETTINGS[service].values() for k in keys}
    return ("provider", "protected", *sorted(specific))


def all_keys() -> list[str]:
    """Every dotted key a profile, DEVENV_* variable or --set flag may set."""
    keys = [f"{section}.{k}" for section, names in SECTION_KEYS.items() for k in names]
    keys += [f"services.{svc}.{k}" for svc in SERVICES for k in _service_keys(svc)]
    return keys


def _is_bool_key(key: str) -> bool:
    return (
        key.startswith(("auth.", "seed."))
        or key.endswith(".protected")
        or key == "services.backend.locked"
    )


def _is_env_key(key: str) -> bool:
    name = key.removeprefix(ENV_TABLE + ".")
    return key.startswith(ENV_TABLE + ".") and _ENV_NAME.fullmatch(name) is not None


def secret_env_name(name: str) -> bool:
    """Whether an extra backend variable looks like it holds a secret (masked when shown)."""
    return secret_name(name)


@dataclass(frozen=True)
class _Value:
    value: str | bool
    source: str  # the layer, as recorded in Profile.sources
    file: str | None  # where an error about this value points (display path)
    err_key: str  # the key as its layer spells it (dotted, or DEVENV_X, or --set key)
    base_dir: Path  # relative paths in this value resolve from here
    template: bool = False  # a TOML string: ${VAR} still to be resolved


@dataclass(frozen=True)
class _File:
    name: str
    path: Path | None
    display: str
    data: Mapping[str, Any]


class _Layers:
    """The merged view; a new provider for a service discards its earlier settings."""

    def __init__(self) -> None:
        self.values: dict[str, _Value] = {}

    def apply(self, layer: Mapping[str, _Value]) -> None:
        ordered = sorted(layer.items(), key=lambda item: not item[0].endswith(".provider"))
        for key, value in ordered:
            if key.endswith(".provider"):
                current = self.values.get(key)
                if current is not None and current.value != value.value:
                    prefix = key.rsplit(".", 1)[0] + "."
                    for old in [k for k in self.values if k.startswith(prefix)]:
                        del self.values[old]
            self.values[key] = value


# --- files ---------------------------------------------------------------------------------


def _read_toml(path: Path, display: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=display) from exc
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise ConfigError(f"invalid TOML: {detail}", file=display) from exc


def _available(root: Path) -> list[str]:
    found = {BUILTIN}
    folder = defaults.profiles_dir(root)
    if folder.is_dir():
        found |= {p.name[: -len(".toml")] for p in folder.glob("*.toml")}
    return sorted(n for n in found if not n.endswith(".local"))


def _is_path(selector: str) -> bool:
    return "/" in selector or "\\" in selector or selector.endswith(".toml")


def _locate(
    root: Path, selector: str, base_dir: Path, *, file: str | None, key: str | None
) -> tuple[str, Path | None]:
    if _is_path(selector):
        path = Path(selector)
        path = path if path.is_absolute() else Path(os.path.normpath(base_dir / path))
        if not path.is_file():
            raise ConfigError(f"profile file {one_line(selector)} not found", file=file, key=key)
        return path.name.removesuffix(".toml"), path
    names = _available(root)
    if not _NAME.fullmatch(selector) or selector.endswith(".local"):
        raise ConfigError(
            f"invalid profile name {one_line(selector)}",
            file=file,
            key=key,
            hint=f"available: {', '.join(names)}",
        )
    path = defaults.profiles_dir(root) / f"{selector}.toml"
    if path.is_file():
        return selector, path
    if selector == BUILTIN:
        return selector, None
    raise ConfigError(
        f"profile `{selector}` not found" + did_you_mean(selector, names),
        file=file,
        key=key,
        hint=f"available profiles: {', '.join(names)}",
    )


def _load_file(root: Path, name: str, path: Path | None) -> _File:
    if path is None:
        return _File(name, None, "built-in", {})
    display = display_path(path, root)
    return _File(name, path, display, _read_toml(path, display))


def _chain(root: Path, selector: str, *, key: str | None = None) -> list[_File]:
    """The selected profile and its bases, base first; `key` names where the selector came from."""
    name, path = _locate(root, selector, root, file=None, key=key)
    chain = [_load_file(root, name, path)]
    seen = [path.resolve() if path else None]
    while True:
        current = chain[-1]
        parent = current.data.get("extends")
        if parent is None:
            break
        if not isinstance(parent, str):
            _fail(current.display, "extends", f"expected a string, got {describe_type(parent)}")
        base_dir = current.path.parent if current.path else root
        name, path = _locate(root, parent, base_dir, file=current.display, key="extends")
        resolved = path.resolve() if path else None
        if resolved in seen:
            names = [f.name for f in chain] + [name]
            _fail(chain[0].display, "extends", f"extends cycle: {' → '.join(names)}")
        seen.append(resolved)
        chain.append(_load_file(root, name, path))
    return chain[::-1]


def _fail(file: str | None, key: str | None, message: str, hint: str | None = None) -> NoReturn:
    raise ConfigError(message, file=file, key=key, hint=hint)


def _table(value: object, file: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(file, key, f"expected a table, got {describe_type(value)}")
    return cast(dict[str, Any], value)


def _file_layer(profile: _File, source: str, *, override: bool = False) -> dict[str, _Value]:
    """Validate one TOML file's shape and flatten it to dotted keys."""
    file, data = profile.display, profile.data
    base_dir = profile.path.parent if profile.path else Path()
    layer: dict[str, _Value] = {}

    def put(key: str, value: object) -> None:
        if _is_bool_key(key):
            if not isinstance(value, bool):
                _fail(file, key, f"expected true or false, got {describe_type(value)}")
        elif not isinstance(value, str):
            _fail(file, key, f"expected a string, got {describe_type(value)}")
        template = isinstance(value, str) and not key.endswith(".provider")
        layer[key] = _Value(value, source, file, key, base_dir, template)

    for top, body in data.items():
        if top not in TOP_KEYS:
            _fail(file, top, "unknown key" + did_you_mean(top, TOP_KEYS))
        if top == "description" and not isinstance(body, str):
            _fail(file, top, f"expected a string, got {describe_type(body)}")
        if top == "extends" and override:
            _fail(file, top, "an override file cannot extend; it applies to its profile")
        if top in SECTION_KEYS:
            for key, value in _table(body, file, top).items():
                if key not in SECTION_KEYS[top]:
                    _fail(
                        file, f"{top}.{key}", "unknown key" + did_you_mean(key, SECTION_KEYS[top])
                    )
                put(f"{top}.{key}", value)
        if top == "services":
            for svc, settings in _table(body, file, top).items():
                _service_table(file, svc, settings, put)
    return layer


def _service_table(
    file: str, svc: str, settings: object, put: Callable[[str, object], None]
) -> None:
    if svc not in SERVICES:
        _fail(
            file,
            f"services.{svc}",
            "unknown service" + did_you_mean(svc, SERVICES),
            hint=f"services: {', '.join(SERVICES)}",
        )
    allowed = _service_keys(svc) + (("env",) if svc == "backend" else ())
    for key, value in _table(settings, file, f"services.{svc}").items():
        dotted = f"services.{svc}.{key}"
        if dotted == ENV_TABLE:
            for name, text in _table(value, file, dotted).items():
                if not _ENV_NAME.fullmatch(name):
                    _fail(file, f"{dotted}.{name}", "invalid environment variable name")
                put(f"{dotted}.{name}", text)
            continue
        if key not in allowed:
            _fail(file, dotted, "unknown key" + did_you_mean(key, allowed))
        put(dotted, value)


# --- env and flags -------------------------------------------------------------------------


def _parse_bool(text: str, file: str | None, key: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    _fail(file, key, f"expected true or false, got {one_line(text)}")


def _literal(key: str, raw: str, source: str, err_key: str, root: Path) -> _Value:
    value: str | bool = _parse_bool(raw, None, err_key) if _is_bool_key(key) else raw
    return _Value(value, source, None, err_key, root)


def _env_layer(environ: Mapping[str, str], root: Path) -> dict[str, _Value]:
    layer: dict[str, _Value] = {}
    sections = {svc.upper(): f"services.{svc}" for svc in SERVICES}
    sections |= {sec.upper(): sec for sec in SECTION_KEYS}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :]
        for upper, prefix in sections.items():
            if not rest.startswith(upper + "_"):
                continue
            key = f"{prefix}.{rest[len(upper) + 1 :].lower()}"
            if key not in all_keys():
                choices = [
                    ENV_PREFIX + k.removeprefix("services.").replace(".", "_").upper()
                    for k in all_keys()
                ]
                _fail(None, var, "unknown devenv setting" + did_you_mean(var, choices))
            layer[key] = _literal(key, environ[var], f"env:{var}", var, root)
    return layer


def _flag_layer(overrides: Mapping[str, str], root: Path) -> dict[str, _Value]:
    layer: dict[str, _Value] = {}
    for key, raw in overrides.items():
        if key not in all_keys() and not _is_env_key(key):
            _fail(None, f"--set {key}", "unknown setting" + did_you_mean(key, all_keys()))
        layer[key] = _literal(key, raw, "flag", f"--set {key}", root)
    return layer


# --- resolution ----------------------------------------------------------------------------


def resolve_profile(
    root: Path,
    selector: str | None,
    *,
    environ: Mapping[str, str],
    cli_overrides: Mapping[str, str] | None = None,
) -> Profile:
    """Merge defaults → profile chain → <name>.local.toml → DEVENV_* env → flags, then check.

    ``${VAR}`` in profile files resolve from ``environ`` over ``<root>/.env``. Raises
    ConfigError (MissingSecretError for an unset variable) or RefusedError when the result
    would point the dev auth bypass or seeding at a protected provider.
    """
    chosen = selector or environ.get(ENV_SELECTOR) or BUILTIN
    chain = _chain(root, chosen, key="--profile" if selector else ENV_SELECTOR)
    selected = chain[-1]
    layers = _Layers()
    layers.apply(
        {
            f"services.{svc}.provider": _Value("local", "defaults", None, "", root)
            for svc in SERVICES
        }
    )
    for profile in chain:
        where = f"{profile.name} ({profile.display})"
        layers.apply(_file_layer(profile, f"profile:{where}"))
    # yours, next to the profile; a packaged profile's (or the built-in's) in the project
    override = (
        selected.path.with_name(f"{selected.name}.local.toml")
        if selected.path and not defaults.is_packaged(selected.path)
        else root / defaults.PROFILES / f"{selected.name}.local.toml"
    )
    if override.is_file():
        loaded = _load_file(root, selected.name, override)
        layers.apply(_file_layer(loaded, f"override:{loaded.display}", override=True))
    from_files = dict(layers.values)
    layers.apply(_env_layer(environ, root))
    layers.apply(_flag_layer(cli_overrides or {}, root))
    for svc in SERVICES:
        _keep_protection(svc, layers.values, from_files, display_path(override, root))
    variables = _variables(root, environ)
    return _build(selected, layers.values, variables)


def _keep_protection(
    svc: str, values: Mapping[str, _Value], from_files: Mapping[str, _Value], override: str
) -> None:
    """A provider a profile file protects can be unprotected by a profile file only: one
    exported variable or flag must not turn on the dev bypass and seeding against it."""
    key = f"services.{svc}.protected"
    final = values.get(key)
    if final is None or final.file is not None or final.value is not False:
        return
    provider_key = f"services.{svc}.provider"
    file_provider = from_files.get(provider_key)
    if file_provider is None or file_provider.value != values[provider_key].value:
        return  # a provider of the environment's or the flags' own: its settings start afresh
    set_by = from_files.get(key)
    if set_by is not None:
        if set_by.value is not True or set_by.file is None:
            return
        origin, what = set_by.file, "protected = true"
    elif file_provider.value == "external" and file_provider.file is not None:
        origin, what = file_provider.file, 'provider = "external" (protected by default)'
    else:
        return
    raise ConfigError(
        f"cannot lower {key} to false: {origin} sets {what}, and only a profile file may "
        "lower it (not an environment variable or --set)",
        key=final.err_key,
        hint=f"if that provider is disposable, set protected = false under [services.{svc}] "
        f"in {override} (your own, gitignored) and "
        + (
            f"drop {final.err_key}"
            if final.err_key.startswith("--set")
            else f"unset {final.err_key}"
        ),
    )


def _variables(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    dotenv = root / ".env"
    merged = load_dotenv(dotenv, display=".env") if dotenv.is_file() else {}
    merged.update(environ)
    return merged


def _build(selected: _File, values: Mapping[str, _Value], variables: Mapping[str, str]) -> Profile:
    sources: dict[str, str] = {}
    bindings: dict[str, ProviderBinding] = {}
    for svc in SERVICES:
        provider_value = values[f"services.{svc}.provider"]
        provider = _provider(provider_value)
        sources[f"services.{svc}.provider"] = provider_value.source
        protected_value = values.get(f"services.{svc}.protected")
        if protected_value is None:
            protected = provider == "external"
            sources[f"services.{svc}.protected"] = "defaults"
        else:
            protected = bool(protected_value.value)
            sources[f"services.{svc}.protected"] = protected_value.source
        settings: dict[str, str] = {}
        allowed = SETTINGS[svc][provider]
        for key in dict.fromkeys(SETTINGS[svc]["local"] + SETTINGS[svc]["external"]):
            found = values.get(f"services.{svc}.{key}")
            if found is None:
                continue
            if key not in allowed:
                other = "external" if provider == "local" else "local"
                _fail(found.file, found.err_key, f'only valid with provider = "{other}"')
            settings[key] = _setting(svc, key, found, variables)
            sources[f"services.{svc}.{key}"] = found.source
        for key in REQUIRED.get((svc, provider), ()):
            if not settings.get(key, "").strip():
                where = provider_value.file if provider_value.file else None
                _fail(
                    where,
                    f"services.{svc}.{key}",
                    ("is empty" if key in settings else "is missing")
                    + f' but required with provider = "{provider}" (from {provider_value.source})',
                )
        if "context" in settings and "image" in settings:
            _fail(
                values[f"services.{svc}.image"].file,
                f"services.{svc}",
                "set either `context` or `image`, not both",
            )
        secret = {"url", "access_key_id", "secret_access_key"} & set(settings)
        if svc == "backend":
            secret = _backend_extras(values, provider, variables, sources, settings, secret)
        bindings[svc] = ProviderBinding(svc, provider, protected, settings, frozenset(secret))

    protected_in_play = [s for s, b in bindings.items() if b.provider == "external" and b.protected]
    dev_bypass = _flag(values, "auth.dev_bypass", not protected_in_play, sources)
    if dev_bypass and protected_in_play:
        svc = protected_in_play[0]
        raise RefusedError(
            f"auth.dev_bypass = true (from {sources['auth.dev_bypass']}) while {svc} is a "
            "protected external provider: anyone could act as the dev user against it",
            hint=f"set auth.dev_bypass = false, or protected = false under [services.{svc}] "
            "if that provider is disposable",
        )
    allow = _flag(values, "seed.allow_protected", False, sources)
    seed = _flag(values, "seed.enabled", allow or not protected_in_play, sources)
    if seed and protected_in_play and not allow:
        svc = protected_in_play[0]
        raise RefusedError(
            f"seed.enabled = true (from {sources['seed.enabled']}) would write the dev user "
            f"and bucket into {svc}, a protected external provider",
            hint="set seed.allow_protected = true if that is intended, or seed.enabled = false",
        )
    return Profile(
        name=selected.name,
        path=selected.path,
        bindings=bindings,
        dev_bypass=dev_bypass,
        seed=seed,
        sources=dict(sorted(sources.items())),
    )


def _backend_extras(
    values: Mapping[str, _Value],
    provider: Provider,
    variables: Mapping[str, str],
    sources: dict[str, str],
    settings: dict[str, str],
    secret: set[str],
) -> set[str]:
    """Backend-only rules: build keys need a source, extra env joins the settings as env.*."""
    if not has_userinfo(settings.get("url", "")):
        secret = secret - {"url"}
    if "image" in settings:
        for key in BUILD_ONLY:
            if key in settings:
                found = values[f"services.backend.{key}"]
                _fail(
                    found.file,
                    found.err_key,
                    "only applies when the backend is built from a source checkout, "
                    "not with `image`",
                )
    env = _backend_env(values, provider, variables, sources)
    settings.update({f"env.{name}": value for name, value in env.items()})
    return secret | {
        f"env.{name}" for name, value in env.items() if secret_env_name(name) or has_userinfo(value)
    }


def _backend_env(
    values: Mapping[str, _Value],
    provider: Provider,
    variables: Mapping[str, str],
    sources: dict[str, str],
) -> dict[str, str]:
    """`[services.backend.env]`: extra variables for the backend container, never ones that
    devenv sets itself from the stack (the database, the store, the bypass, host and port)."""
    env: dict[str, str] = {}
    for key in sorted(k for k in values if k.startswith(ENV_TABLE + ".")):
        found = values[key]
        name = key[len(ENV_TABLE) + 1 :]
        if provider != "local":
            _fail(found.file, found.err_key, 'only valid with provider = "local"')
        upper = name.upper()
        if upper in OWNED_ENV or upper.startswith(OWNED_ENV_PREFIXES):
            _fail(
                found.file,
                found.err_key,
                f"{name} is set by devenv from the stack it runs and cannot be overridden",
                hint="remove it; configure the service itself instead "
                "(services.postgres, services.objectstore, auth.dev_bypass)",
            )
        text = str(found.value)
        if found.template:
            text = interpolate(
                text, variables, file=found.file, key=found.err_key, strict=True, echo=False
            )
        env[name] = text
        sources[key] = found.source
    return env


def backend_env(profile: Profile) -> dict[str, str]:
    """The extra backend environment a profile asks for (`[services.backend.env]`)."""
    settings = profile.binding("backend").settings
    return {k[len("env.") :]: v for k, v in settings.items() if k.startswith("env.")}


def _provider(value: _Value) -> Provider:
    for provider in PROVIDERS:
        if value.value == provider:
            return provider
    shown = one_line(str(value.value))
    _fail(
        value.file,
        value.err_key,
        f"unknown provider {shown}; allowed: {', '.join(PROVIDERS)}"
        + did_you_mean(str(value.value), PROVIDERS),
    )


def _flag(values: Mapping[str, _Value], key: str, default: bool, sources: dict[str, str]) -> bool:
    found = values.get(key)
    sources[key] = found.source if found else "defaults"
    return bool(found.value) if found else default


def _setting(svc: str, key: str, found: _Value, variables: Mapping[str, str]) -> str:
    if isinstance(found.value, bool):
        return _bool_text(found.value)
    text = str(found.value)
    if found.template:
        text = interpolate(
            text, variables, file=found.file, key=found.err_key, strict=True, echo=False
        )
    schemes = URL_SCHEMES.get((svc, key))
    if schemes and text.strip():
        scheme = text.partition("://")[0].lower() if "://" in text else ""
        if scheme not in schemes:
            # never echo the value: it may hold a password
            _fail(found.file, found.err_key, f"expected a {' or '.join(schemes)}:// URL")
    if key in ("package", "binary") and not _CARGO_NAME.fullmatch(text):
        _fail(
            found.file,
            found.err_key,
            f"{one_line(text)} is not a cargo {key} name",
            hint="letters, digits, '-' and '_' (default: ignition-api)",
        )
    if key == "watch_profile" and text not in WATCH_PROFILES:
        _fail(
            found.file,
            found.err_key,
            f"unknown cargo profile {one_line(text)}; allowed: {', '.join(WATCH_PROFILES)}"
            + did_you_mean(text, WATCH_PROFILES),
        )
    if key in ("context", "migrations", "contract") and text.strip():
        text = os.path.normpath(found.base_dir / text)
    return text


# --- listing and display -------------------------------------------------------------------


def list_profiles(root: Path) -> list[tuple[str, Path | None, str]]:
    """(name, path, description) of every profile, sorted; the built-in `local` is always there."""
    rows: list[tuple[str, Path | None, str]] = []
    for name in _available(root):
        path = defaults.profiles_dir(root) / f"{name}.toml"
        if not path.is_file():
            rows.append((name, None, "built-in: every service runs locally"))
            continue
        description = _read_toml(path, display_path(path, root)).get("description", "")
        rows.append((name, path, description if isinstance(description, str) else ""))
    return rows


def describe(profile: Profile) -> list[tuple[str, str, str]]:
    """(key, printable value, source) rows for `devenv config`; secrets are masked."""
    rows = [
        ("auth.dev_bypass", _bool_text(profile.dev_bypass)),
        ("seed.enabled", _bool_text(profile.seed)),
    ]
    for svc in SERVICES:
        binding = profile.binding(svc)
        rows.append((f"services.{svc}.provider", binding.provider))
        rows.append((f"services.{svc}.protected", _bool_text(binding.protected)))
        for key, value in sorted(binding.settings.items()):
            shown = value
            if key in binding.secret_keys:
                shown = mask_url(value) if key == "url" or has_userinfo(value) else MASK
            rows.append((f"services.{svc}.{key}", shown))
    return [(key, value, profile.sources.get(key, "defaults")) for key, value in rows]


def _bool_text(value: bool) -> str:
    return "true" if value else "false"
