"""images layer of devenv."""
