"""Deprecated alias of :mod:`txtezosp2p.wire.ids`, where the module moved."""

import sys
import warnings

from .wire import ids as _moved

warnings.warn(
    "txtezosp2p.ids moved to txtezosp2p.wire.ids; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
