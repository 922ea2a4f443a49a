"""Deprecated alias of :mod:`txtezosp2p.wire.crypto`, where the module moved."""

import sys
import warnings

from .wire import crypto as _moved

warnings.warn(
    "txtezosp2p.crypto moved to txtezosp2p.wire.crypto; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
