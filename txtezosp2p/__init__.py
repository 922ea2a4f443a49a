"""txtezosp2p: the Tezos peer-to-peer layer on Twisted."""

from ._version import __version__

__all__ = ["__version__"]
