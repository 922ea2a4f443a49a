"""Deprecated alias of :mod:`txtezosp2p.wire.errors`, where the module moved."""

import sys
import warnings

from .wire import errors as _moved

warnings.warn(
    "txtezosp2p.errors moved to txtezosp2p.wire.errors; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
