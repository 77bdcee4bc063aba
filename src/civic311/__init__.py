"""civic311: a typed, resilient Open311 GeoReport v2 client."""

from civic311._version import __version__

__all__ = ["__version__"]
