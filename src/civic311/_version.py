"""The one place the version lives (read by hatchling and the User-Agent)."""

__version__ = "0.1.0"
