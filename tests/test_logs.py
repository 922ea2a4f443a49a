# -*- test-case-name: tests.test_logs -*-
"""
Tests for L{txtezosp2p.node.logs}: what twistd's log keeps by default (the
twistd process test in C{tests.test_node} checks the whole log).
"""

from __future__ import annotations

import io
import os
import sys

from twisted.application.service import Application, IServiceCollection
from twisted.logger import ILogObserver, Logger, LogLevel, LogPublisher
from twisted.python import log as legacy_log
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.node.logs import NodeLogPolicy, policy_observer, with_log_policy
from txtezosp2p.node.tap import Options


class PolicyTests(SynchronousTestCase):
    def kept(self, policy: NodeLogPolicy, namespace: str, level: LogLevel, **extra: object) -> bool:
        event = {"log_namespace": namespace, "log_level": level, **extra}
        return policy.keeps(event)

    def test_default(self) -> None:
        policy = NodeLogPolicy()
        self.assertTrue(self.kept(policy, "txtezosp2p.p2p.node", LogLevel.info))
        self.assertFalse(self.kept(policy, "txtezosp2p.p2p.connect_handler", LogLevel.debug))
        # twistd's lifecycle stays
        self.assertTrue(
            self.kept(policy, "twisted.scripts._twistd_unix.UnixAppLogger", LogLevel.info)
        )
        self.assertTrue(self.kept(policy, "twisted.internet.base", LogLevel.info))
        # Twisted's chatter goes: factories starting at each dial, ports starting and closing
        self.assertFalse(
            self.kept(policy, "twisted.internet.endpoints.OneShotFactory", LogLevel.info)
        )
        self.assertFalse(self.kept(policy, "log_legacy", LogLevel.info))
        # problems of anyone stay
        self.assertTrue(self.kept(policy, "log_legacy", LogLevel.warn))
        self.assertTrue(self.kept(policy, "somelib", LogLevel.error))
        failure = Failure(ValueError("boom"))
        self.assertTrue(self.kept(policy, "somelib", LogLevel.critical, log_failure=failure))

    def test_levels(self) -> None:
        debug = NodeLogPolicy(LogLevel.debug)
        self.assertTrue(self.kept(debug, "txtezosp2p.p2p.connect_handler", LogLevel.debug))
        self.assertFalse(self.kept(debug, "log_legacy", LogLevel.debug))
        quiet = NodeLogPolicy(LogLevel.error)
        self.assertFalse(self.kept(quiet, "txtezosp2p.p2p.node", LogLevel.warn))
        self.assertTrue(self.kept(quiet, "txtezosp2p.p2p.node", LogLevel.critical))

    def test_through_an_observer(self) -> None:
        """Legacy C{log.msg} chatter and our debug lines do not reach the file."""
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        observer = policy_observer({"nodaemon": True, "logfile": None}, LogLevel.info)
        assert observer is not None
        publisher = LogPublisher(observer)
        Logger(namespace="txtezosp2p.p2p.node", observer=publisher).info("node running")
        Logger(namespace="txtezosp2p.p2p.node", observer=publisher).debug("a dial")
        legacy = legacy_log.LogPublisher(publisher)
        legacy.msg("_IncomingFactory starting on 9732")
        text = out.getvalue()
        self.assertIn("node running", text)
        self.assertNotIn("a dial", text)
        self.assertNotIn("starting on", text)


class TwistdObserverTests(SynchronousTestCase):
    def test_destinations(self) -> None:
        """The destination twistd would choose; the operator's own observer is left alone."""
        self.assertIsNotNone(policy_observer({"nodaemon": True, "logfile": "-"}, LogLevel.info))
        path = os.path.abspath(self.mktemp())
        self.assertIsNotNone(policy_observer({"nodaemon": False, "logfile": path}, LogLevel.info))
        self.assertTrue(os.path.exists(path))
        for chosen in ({"logger": "mymodule.observer"}, {"syslog": True}):
            self.assertIsNone(policy_observer(chosen, LogLevel.info))
        self.assertIsNone(policy_observer(None, LogLevel.info))

    def test_application_component(self) -> None:
        """The wrapper gives twistd's application the observer, unless it has one."""
        options = Options()
        options.parseOptions(["-d", self.mktemp(), "--no-admin", "--log-level", "debug"])
        self.assertEqual(options["log-level"], "debug")
        from twisted.application.service import Service

        observer = policy_observer({"nodaemon": True}, LogLevel.info)
        application = Application("x")
        with_log_policy(Service(), observer).setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), observer)
        self.assertEqual(len(list(IServiceCollection(application))), 1)
        mine = Application("y")
        own = policy_observer({"nodaemon": True}, LogLevel.warn)
        mine.setComponent(ILogObserver, own)
        with_log_policy(Service(), observer).setServiceParent(mine)
        self.assertIs(mine.getComponent(ILogObserver), own)
