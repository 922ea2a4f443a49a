# -*- test-case-name: tests.test_admin -*-
"""
Prometheus metrics of one node (``GET /metrics``) under the ``octez_p2p_``
prefix.  They count what Octez's ``p2p`` metrics count (behaviour.md
section 14), plus a few of our own, but as labelled families
(``octez_p2p_messages_total{kind=...}``) rather than one metric per
quantity: dashboards built for Octez need their queries adapted
(docs/admin-api.md lists every family).

Every value is read from the live P2P layer when the registry is scraped
(a custom collector), so nothing is updated on the hot paths; counters come
from ``P2P.counters`` (pool events and application messages) and
``ConnectHandler.failures`` (failed handshakes by reason).  Each node has its
own :class:`~prometheus_client.CollectorRegistry`, so several nodes in one
process (the sandbox, tests) never mix their numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ..p2p import P2P, FakedP2P
from ..pool_state import Accepted, Disconnected, Requested, Running

if TYPE_CHECKING:
    from ..observer import Observer

PREFIX = "octez_p2p_"

#: Pool events counted as Octez's ``messages_*`` and ``swap_*`` counters.
MESSAGE_EVENTS = {
    "advertise_received": "advertise_received",
    "advertise_sent": "advertise_sent",
    "bootstrap_received": "bootstrap_received",
    "bootstrap_sent": "bootstrap_sent",
    "swap_request_sent": "swap_requests_sent",
    "swap_request_received": "swap_requests_received",
    "swap_ack_sent": "swap_ack_sent",
    "swap_ack_received": "swap_ack_received",
}
SWAP_EVENTS = {
    "swap_request_ignored": "ignored",
    "swap_success": "success",
    "swap_failure": "fail",
}
USER_COUNTERS = ("user_message_sent", "user_message_received", "broadcast_message_sent")


class P2PCollector:
    """Collects the metrics of the P2P layer ``source()`` returns (none while it starts)."""

    def __init__(self, source: Callable[[], P2P | FakedP2P | None]) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []  # values appear once the layer runs; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        p2p = self.source()
        if not isinstance(p2p, P2P):
            return  # starting, or the faked network: nothing to count
        counters = p2p.counters

        messages = CounterMetricFamily(
            PREFIX + "messages", "P2P messages, by kind", labels=["kind"]
        )
        for name in USER_COUNTERS:
            messages.add_metric([name], counters[name])
        for event, name in MESSAGE_EVENTS.items():
            messages.add_metric([name], counters[event])
        yield messages

        swaps = CounterMetricFamily(PREFIX + "swap", "Swaps, by outcome", labels=["outcome"])
        for event, name in SWAP_EVENTS.items():
            swaps.add_metric([name], counters[event])
        yield swaps

        connections = p2p.connections()
        incoming = sum(1 for c in connections if c.info.incoming)
        private = sum(1 for c in connections if c.private)
        gauge = GaugeMetricFamily(PREFIX + "connections", "Running connections", labels=["kind"])
        gauge.add_metric(["active"], len(connections))
        gauge.add_metric(["incoming"], incoming)
        gauge.add_metric(["outgoing"], len(connections) - incoming)
        gauge.add_metric(["private"], private)
        yield gauge

        handler = p2p.handler
        yield GaugeMetricFamily(
            PREFIX + "handshakes_in_flight",
            "Handshakes under way, both directions",
            value=handler.handshakes_in_flight,
        )
        failures = CounterMetricFamily(
            PREFIX + "handshake_failures",
            "Failed dials and handshakes, by reason (Octez error id)",
            labels=["reason"],
        )
        for reason, count in sorted(handler.failures.items()):
            failures.add_metric([reason], count)
        yield failures

        established = CounterMetricFamily(
            PREFIX + "connection_events", "Connection events, by kind", labels=["kind"]
        )
        for kind in (
            "connection_established",
            "disconnection",
            "incoming_connection",
            "outgoing_connection",
            "authentication_failed",
            "rejecting_request",
            "request_rejected",
        ):
            established.add_metric([kind], counters[kind])
        yield established

        peers = GaugeMetricFamily(PREFIX + "peers", "Known peers, by state", labels=["state"])
        peer_states = {"accepted": 0, "running": 0, "disconnected": 0}
        for peer in p2p.pool.peers.values():
            peer_states[peer.state.kind] += 1
        for kind, count in peer_states.items():
            peers.add_metric([kind], count)
        yield peers

        points = GaugeMetricFamily(PREFIX + "points", "Known points, by state", labels=["state"])
        point_states = {"requested": 0, "accepted": 0, "running": 0, "disconnected": 0}
        trusted = greylisted = 0
        now = p2p.clock.seconds()
        for info in p2p.pool.points.values():
            point_state = info.state
            if isinstance(point_state, Running):
                point_states["running"] += 1
            elif isinstance(point_state, Accepted):
                point_states["accepted"] += 1
            elif isinstance(point_state, Requested):
                point_states["requested"] += 1
            elif isinstance(point_state, Disconnected):
                point_states["disconnected"] += 1
            trusted += info.trusted
            greylisted += not info.may_reconnect(now)
        for kind, count in point_states.items():
            points.add_metric([kind], count)
        points.add_metric(["trusted"], trusted)
        points.add_metric(["greylisted"], greylisted)
        yield points

        acl = p2p.acl
        greylist = GaugeMetricFamily(
            PREFIX + "greylist", "Greylisted IP addresses and peers", labels=["kind"]
        )
        greylist.add_metric(["ips"], len(acl.greylisted_ips()))
        greylist.add_metric(["peers"], len(acl.greylisted_peers()))
        yield greylist
        banned = GaugeMetricFamily(
            PREFIX + "banned", "Banned IP addresses and peers", labels=["kind"]
        )
        banned.add_metric(["ips"], len(acl.banned_ips()))
        banned.add_metric(["peers"], len(acl.banned_peers()))
        yield banned

        stat = p2p.global_stat()
        yield CounterMetricFamily(
            PREFIX + "io_scheduler_total_sent", "Bytes sent", value=stat.total_sent
        )
        yield CounterMetricFamily(
            PREFIX + "io_scheduler_total_recv", "Bytes received", value=stat.total_recv
        )
        yield GaugeMetricFamily(
            PREFIX + "io_scheduler_current_inflow",
            "Download rate, bytes/s (moving average)",
            value=stat.current_inflow,
        )
        yield GaugeMetricFamily(
            PREFIX + "io_scheduler_current_outflow",
            "Upload rate, bytes/s (moving average)",
            value=stat.current_outflow,
        )

        maintenance = p2p.maintenance
        yield CounterMetricFamily(
            PREFIX + "maintenance_steps",
            "Maintenance steps run",
            value=0 if maintenance is None else maintenance.steps,
        )


class ObserverCollector:
    """The observer's metrics (``--observe``): propagation delays, sightings, heads."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        observer = self.observer
        delays = HistogramMetricFamily(
            PREFIX + "observer_propagation_delay_seconds",
            "Delay between the first announcement of a block or operation and each "
            "other peer's first announcement of it",
            labels=["kind"],
        )
        for kind, histogram in observer.delays.items():
            delays.add_metric([kind], histogram.cumulative(), histogram.total)
        yield delays
        messages = CounterMetricFamily(
            PREFIX + "observer_messages", "Shell messages read, by kind", labels=["kind"]
        )
        for kind, count in observer.counters.items():
            if kind != "requests_sent":
                messages.add_metric([kind], count)
        yield messages
        yield CounterMetricFamily(
            PREFIX + "observer_requests_sent",
            "Get_current_branch and Get_current_head requests sent",
            value=observer.counters["requests_sent"],
        )
        tracked = GaugeMetricFamily(
            PREFIX + "observer_tracked", "Entries in the observer's windows", labels=["kind"]
        )
        for kind, size in observer.sizes().items():
            tracked.add_metric([kind], size)
        yield tracked


def register_observer(registry: CollectorRegistry, observer: Observer) -> None:
    """Add an observer's metrics to a node's registry."""
    registry.register(ObserverCollector(observer))  # type: ignore[arg-type, unused-ignore]


def node_registry(source: Callable[[], P2P | FakedP2P | None]) -> CollectorRegistry:
    """A registry holding the metrics of one node."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(P2PCollector(source))  # type: ignore[arg-type, unused-ignore]
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = [
    "PREFIX",
    "ObserverCollector",
    "P2PCollector",
    "node_registry",
    "register_observer",
    "render",
]
