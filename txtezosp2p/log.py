"""
The library's log level.

txtezosp2p logs with ``twisted.logger`` and never installs observers (the
runner does).  Events below the library's level are not even built, which
keeps per-connection and per-message debug events free when nobody wants
them.  The level is ``info`` until :func:`set_level` changes it::

    from twisted.logger import LogLevel
    from txtezosp2p import log

    log.set_level(LogLevel.debug)   # also emit the debug events
"""

from __future__ import annotations

from ._events import level, set_level

__all__ = ["level", "set_level"]
