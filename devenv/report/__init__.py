"""report layer of devenv."""
