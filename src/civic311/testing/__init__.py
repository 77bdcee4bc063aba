"""FakeCity and test helpers (being built)."""
