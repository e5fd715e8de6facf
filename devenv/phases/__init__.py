"""phases layer of devenv."""
