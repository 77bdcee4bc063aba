"""pytest plugin (being built)."""
