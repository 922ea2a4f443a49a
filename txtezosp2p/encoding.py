"""Deprecated alias of :mod:`txtezosp2p.wire.encoding`, where the module moved."""

import sys
import warnings

from .wire import encoding as _moved

warnings.warn(
    "txtezosp2p.encoding moved to txtezosp2p.wire.encoding; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
