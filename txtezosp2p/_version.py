"""The version of txtezosp2p."""

__version__ = "0.1.0"
