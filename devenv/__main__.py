"""`python -m devenv` runs the CLI."""

from devenv.cli.main import run

run()
