# -*- test-case-name: tests.test_logs -*-
"""
What ``twistd tezos-p2p`` writes to its log by default.

twistd logs every event of every level.  A node's log keeps instead:

* the node's own events (``txtezosp2p.*``) from ``--log-level`` up (``info``
  by default; ``debug`` adds every dial, message and handshake step, and
  makes the library build those events at all, see :mod:`txtezosp2p.log`);
* twistd's own lifecycle (``twisted.scripts.*``, ``twisted.application.*``,
  and the reactor's ``Received SIGTERM`` / ``Main loop terminated``);
* warnings and errors of everything else, and every failure with its
  traceback.

Twisted's informational chatter goes: ``Starting factory <...>`` at every
dial, ``<Factory> starting on <port>`` and ``(TCP Port <port> Closed)`` at
every listening socket.

twistd takes its log observer from the application when the application has
one (``ILogObserver`` component, as in a ``.tac`` file); the node's service
gives its application a filtering observer over the destination twistd
would have used itself (standard output with ``-n``, ``--logfile`` or
``twistd.log``).  With ``--logger`` or ``--syslog`` the operator chose the
observer, and it is left alone.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    ILogObserver,
    LogEvent,
    LogLevel,
    PredicateResult,
    textFileLogObserver,
)
from zope.interface import implementer

__all__ = ["LEVELS", "NodeLogPolicy", "policy_observer", "with_log_policy"]

#: ``--log-level`` names.
LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
}

_KEEP: PredicateResult = PredicateResult.maybe
_DROP: PredicateResult = PredicateResult.no

#: Namespaces of Twisted whose information an operator wants: twistd starting
#: and stopping, the reactor's signals.
_TWISTED_LIFECYCLE = ("twisted.scripts", "twisted.application", "twisted.internet.base")


@implementer(ILogFilterPredicate)
class NodeLogPolicy:
    """The default log of a node (see the module's docstring)."""

    def __init__(self, level: LogLevel = LogLevel.info) -> None:
        self.level = level

    def __call__(self, event: LogEvent) -> PredicateResult:
        return _KEEP if self.keeps(event) else _DROP

    def keeps(self, event: LogEvent) -> bool:
        level = event.get("log_level", LogLevel.info)
        if event.get("log_failure") is not None or level >= LogLevel.warn:
            return bool(level >= self.level)
        namespace = str(event.get("log_namespace", ""))
        if namespace == "txtezosp2p" or namespace.startswith("txtezosp2p."):
            return bool(level >= self.level)
        return namespace.startswith(_TWISTED_LIFECYCLE) and bool(level >= LogLevel.info)


def policy_observer(server_options: Any, level: LogLevel) -> ILogObserver | None:
    """
    The observer twistd would use for ``server_options`` (its own options,
    the parent of ours), behind :class:`NodeLogPolicy`; ``None`` when the
    operator chose one (``--logger``, ``--syslog``) or twistd is not ours.
    """
    if server_options is None or not hasattr(server_options, "get"):
        return None
    if server_options.get("logger") or server_options.get("syslog"):
        return None
    filename = server_options.get("logfile")
    nodaemon = server_options.get("nodaemon")
    if filename == "-" or (nodaemon and not filename):
        if not nodaemon:
            return None  # twistd refuses it itself ("Daemons cannot log to stdout")
        stream: Any = sys.stdout
    else:
        from twisted.python.logfile import LogFile

        stream = LogFile.fromFullPath(filename or "twistd.log")
        if not signal.getsignal(signal.SIGUSR1):  # as twistd: SIGUSR1 rotates the file

            def rotate(signum: int, frame: object) -> None:
                from twisted.internet import reactor

                reactor.callFromThread(stream.rotate)  # type: ignore[attr-defined]

            signal.signal(signal.SIGUSR1, rotate)
    return FilteringLogObserver(textFileLogObserver(stream), [NodeLogPolicy(level)])


class with_log_policy(MultiService):
    """
    ``service`` under a parent that, once given to twistd's application,
    makes the application's log observer the node's (unless it has one).
    """

    def __init__(self, service: IService, observer: ILogObserver | None) -> None:
        super().__init__()
        self.observer = observer
        service.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        if self.observer is None or not hasattr(parent, "getComponent"):
            return
        if parent.getComponent(ILogObserver, None) is None:
            parent.setComponent(ILogObserver, self.observer)
