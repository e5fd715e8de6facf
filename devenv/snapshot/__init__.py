"""Snapshots: save and restore a project's database and bucket together; reset to golden."""
