"""`devenv watch`: from a save in the backend checkout to a verified backend, without images."""
