"""`devenv ui`: a live local dashboard served from the devenv process itself."""
