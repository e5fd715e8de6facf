"""runtime layer of devenv."""
