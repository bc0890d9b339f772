"""The package version, read by hatchling and by the layer's description."""

__version__ = "0.1.0"
