"""probes layer of devenv."""
