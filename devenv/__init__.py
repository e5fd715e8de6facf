"""devenv: one command to a verified local Ignition stack, and a live phase-readiness report."""

__version__ = "0.1.0"

__all__ = ["__version__"]
