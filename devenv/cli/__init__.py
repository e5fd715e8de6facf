"""cli layer of devenv."""
