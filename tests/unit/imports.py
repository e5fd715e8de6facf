"""Which modules a fresh interpreter has loaded after running some code of devenv's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def loaded_after(code: str, names: list[str]) -> list[str]:
    """Run `code` in a new interpreter (this checkout on its path); which of `names` it loaded."""
    script = f"import sys\n{code}\nprint(','.join(m for m in {names!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    return [m for m in done.stdout.strip().split(",") if m]


def importing(modules: list[str]) -> str:
    """Code that imports each of `modules`."""
    return "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
