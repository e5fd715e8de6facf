"""config layer of devenv."""
