"""The lab beside the checkout (shared/lab): a second engine in its own network namespace, a
registry mirror under Docker Hub names, and a user without root or Rust, as on a developer's
laptop or a remote host. Starting it is idempotent and serialised by a file lock, so CI can
start it ahead of the tests and the first lab test waits for that instead of starting again."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "devenv-r1"
ADDRESS = "10.99.0.2"
TCP_HOST = f"tcp://{ADDRESS}:2375"
SSH_HOST = "ssh://devenv-r1"
LAB_ROOT = Path("/tmp/devenv-r1")
SOCKET = f"unix://{LAB_ROOT}/run/docker.sock"
USER = "devlab"
MAIN_IMAGES = ("devenv-standin/bookworm-base:1", "devenv-standin/objectstore:1")
LOCK = Path("/tmp/devenv-lab.lock")


def scripts() -> Path:
    """Where shared/lab is: `$DEVENV_LAB`, else beside the checkout."""
    return Path(os.environ.get("DEVENV_LAB") or REPO.parent / "shared" / "lab")


def absent_reason() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if not (scripts() / "remote-engine.sh").is_file():
        return f"no lab scripts at {scripts()} (shared/lab beside the checkout, or $DEVENV_LAB)"
    if os.geteuid() != 0:
        return "the lab starts a second engine and a network namespace: run the tests as root"
    for tool in ("ip", "nsenter", "runuser", "iptables", "dockerd"):
        if shutil.which(tool) is None:
            return f"the lab needs `{tool}` on PATH"
    return None


def _run(args: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else dict(env),
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {proc.returncode}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def _main_engine_has(image: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, check=False
        ).returncode
        == 0
    )


def ensure() -> None:
    """Start the lab engine (with sshd), the registry mirror and the seeded images, and the
    user `devlab`; each step only when it is not already there."""
    LOCK.touch(exist_ok=True)
    with LOCK.open("r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        lab = scripts()
        _run(["bash", str(lab / "remote-engine.sh"), "up", "ssh"])
        _run(["bash", str(lab / "registry.sh"), "up"])
        if subprocess.run(["bash", str(lab / "registry.sh"), "seeded"], check=False).returncode:
            if not all(_main_engine_has(image) for image in MAIN_IMAGES):
                # the registry is seeded from the offline stand-ins (root builds them here)
                _run([sys.executable, "-m", "devenv", "images", "build"])
            _run(["bash", str(lab / "registry.sh"), "seed"])
        _ensure_user()


def _ensure_user() -> None:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        _run(["useradd", "--create-home", "--gid", USER, "--shell", "/bin/bash", USER])


def home() -> Path:
    return Path(pwd.getpwnam(USER).pw_dir)


def user_env(**more: str) -> dict[str, str]:
    """A login-like environment for `devlab`: not root's PATH (no rustup cargo), its engine."""
    env = {
        "HOME": str(home()),
        "USER": USER,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "DOCKER_HOST": SOCKET,
    }
    env.update(more)
    return env


def as_user(
    command: str, *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run a shell command as `devlab` in the lab engine's network namespace, where the engine's
    127.0.0.1 is the user's own loopback (as on their laptop)."""
    environment = user_env(**dict(env or {}))
    return subprocess.run(
        [
            "nsenter", f"--net=/var/run/netns/{NAMESPACE}",
            "runuser", "-u", USER, "--",
            "env", "-i", *(f"{k}={v}" for k, v in environment.items()),
            "bash", "-c", f"cd {cwd} && {command}",
        ],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def as_root(
    command: str, *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run a shell command as root in the lab engine's network namespace, with root's own
    PATH (and so its cargo) and the lab engine as DOCKER_HOST."""
    environment = {**os.environ, "DOCKER_HOST": SOCKET, **dict(env or {})}
    return subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{NAMESPACE}", "bash", "-c", f"cd {cwd} && {command}"],
        capture_output=True, text=True, timeout=timeout, check=False, env=environment,
    )  # fmt: skip


def fresh_copy(dest: Path) -> Path:
    """The checkout as it is on disk (tracked and untracked files git does not ignore), owned by
    `devlab`: what a fresh clone of this tree gives a user, without the root-owned caches."""
    files = _run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    )
    if dest.exists():
        shutil.rmtree(dest)
    for name in filter(None, files.split("\0")):
        source = REPO / name
        if not source.is_file():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    _run(["chown", "-R", f"{USER}:{USER}", str(dest)])
    return dest


@dataclass(frozen=True)
class LabEngine:
    """The second engine as seen from this machine (over TCP) and from the user's shell."""

    tcp: str = TCP_HOST
    socket: str = SOCKET

    def docker(self, *args: str) -> str:
        return _run(["docker", *args], env={**os.environ, "DOCKER_HOST": self.tcp})

    def labelled(self, kind: str, project: str) -> list[str]:
        """Ids of containers (`ps`) or volumes (`volume`) carrying a project's label."""
        verb = ["ps", "-aq"] if kind == "ps" else ["volume", "ls", "-q"]
        out = self.docker(*verb, "--filter", f"label=io.devenv.project={project}")
        return out.split()

    def has(self, ref: str) -> bool:
        env = {**os.environ, "DOCKER_HOST": self.tcp}
        found = subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, check=False, env=env
        )
        return found.returncode == 0

    def image_id(self, ref: str) -> str:
        return self.docker("image", "inspect", "--format", "{{.Id}}", ref).strip()

    def images_in_use(self) -> set[str]:
        """Ids of the images any container on the engine (any project) was made from."""
        ids = self.docker("ps", "-aq").split()
        if not ids:
            return set()
        return set(self.docker("inspect", "--format", "{{.Image}}", *ids).split())

    def remove_image(self, ref: str) -> bool:
        """Untag `ref` (its image goes with its last tag) unless a container of any project
        uses that image; True when it is gone."""
        if not self.has(ref):
            return True
        if self.image_id(ref) in self.images_in_use():
            return False
        env = {**os.environ, "DOCKER_HOST": self.tcp}
        gone = subprocess.run(["docker", "rmi", ref], capture_output=True, check=False, env=env)
        return gone.returncode == 0

    def load_from_main(self, ref: str) -> None:
        """Copy an image of this machine's engine into the lab engine, under `ref` only."""
        env = {**os.environ, "DOCKER_HOST": self.tcp}
        with subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE) as saved:
            assert saved.stdout is not None
            loaded = subprocess.run(
                ["docker", "load", "-q"], stdin=saved.stdout, capture_output=True,
                env=env, check=False,
            )  # fmt: skip
            saved.stdout.close()
        if loaded.returncode != 0 or saved.returncode != 0:
            raise RuntimeError(f"docker save {ref} | docker load: {loaded.stderr!r}")

    def remove_project(self, project: str) -> None:
        containers = self.labelled("ps", project)
        if containers:
            self.docker("rm", "-f", *containers)
        volumes = self.labelled("volume", project)
        if volumes:
            self.docker("volume", "rm", "-f", *volumes)


def main() -> int:
    """`python -m tests.lab.lab`: start the lab ahead of the tests (CI), or say why not."""
    reason = absent_reason()
    if reason is not None:
        print(f"lab skipped: {reason}")  # noqa: T201
        return 0
    ensure()
    print(f"lab ready: engine {TCP_HOST} and {SSH_HOST}, user {USER}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
