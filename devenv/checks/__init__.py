"""checks layer of devenv."""
