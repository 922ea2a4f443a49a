"""
``python -m bench.churn``: network formation and churn with real
``twistd tezos-p2p`` processes on loopback.

The acceptance bar it checks: N nodes (12 by default), bootstrapped from one
point, each reach at least ``min_connections`` within 3 maintenance periods,
and stay within bounds under churn.

How it runs:

1. Node 0 is started alone (no bootstrap peer) and the script waits for it
   to log ``running, listening on port``, as the twistd test does.
2. Nodes 1..N-1 are started at once, each with node 0's point as its only
   ``--peer``.  This moment is the origin of the formation clock: every
   node's "time to min_connections" is counted from it (for nodes 1..N-1 it
   is the moment their process was spawned; node 0 was ready just before).
3. Every node's admin API (``GET /network/connections``) is polled every
   ``--interval`` seconds; the first sweep that sees at least
   ``min_connections`` gives the node's time (resolution: one interval).
   Then all nodes are watched for ``--hold`` maintenance periods.
4. Churn, ``--rounds`` times: a third of the nodes (never node 0, chosen
   with ``--seed``) get SIGTERM; once they have exited they are restarted
   with the same data directory and ports.  The recovery time is counted
   from the restart until a sweep sees every node within
   ``[min_connections, max_connections]``; then all nodes are watched for
   ``--hold`` periods and their lowest and highest counts recorded.
5. Besides the sampled counts, each node's log is replayed at the end
   (``new connection to`` / ``disconnected from`` lines) to get the exact
   highest number of connections each process ever held, so that a
   transient excursion above ``max_connections`` between two sweeps is not
   missed.

The bar holds (exit status 0) when every node reaches ``min_connections``
within ``--periods`` maintenance periods, every churn round recovers within
``--periods`` periods of the restart, no node leaves the bounds during the
hold windows, and no node holds more than ``max_connections`` connections
during churn (sampled or replayed).  A brief excursion above
``max_connections`` during the initial burst, which Octez's admission check
allows (behaviour.md sections 3.1 and 3.4), is reported in the JSON
document (``never_above_max_whole_run``) but does not fail the bar.
Otherwise the exit status is 1.

Listening and admin ports are taken below the kernel's ephemeral port range,
so that an outgoing connection cannot occupy the port of a node about to be
restarted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from txtezosp2p import __version__
from txtezosp2p.limits import Limits
from txtezosp2p.node.config import connections_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: ``twistd`` as the installed script runs it, with this interpreter (as in tests/test_node.py).
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
#: What a node logs once its P2P layer listens (``Node._started``).
READY = b"running, listening on port"
NEW_CONNECTION = re.compile(rb"\] new connection to ")
DISCONNECTED = re.compile(rb"\] disconnected from ")
HOST = "127.0.0.1"


class BenchError(Exception):
    """The benchmark cannot go on (overall timeout, a node that does not start)."""


class Interrupted(Exception):
    """SIGTERM or SIGINT received."""


# -- ports ---------------------------------------------------------------------------------


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((HOST, port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def free_ports(count: int, rng: random.Random) -> list[int]:
    """``count`` ports free on loopback, below the ephemeral range when possible."""
    low = _ephemeral_low()
    ports: list[int] = []
    if low > 11000:
        start = rng.randrange(10000, max(10001, low - 4 * count - 1000))
        port = start
        while len(ports) < count and port < low:
            if _bindable(port):
                ports.append(port)
            port += 1
    if len(ports) < count:  # fall back on ports the system picks
        held: list[socket.socket] = []
        try:
            while len(ports) < count:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((HOST, 0))
                held.append(sock)
                port = sock.getsockname()[1]
                if port not in ports:
                    ports.append(port)
        finally:
            for sock in held:
                sock.close()
    return ports


# -- nodes ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One process of a node: its log and when things happened (bench clock)."""

    number: int
    log_path: str
    started_at: float
    ready_at: float | None = None
    first_min_at: float | None = None
    ended_at: float | None = None
    exit_status: int | None = None
    killed: bool = False


@dataclass
class NodeProcess:
    """A ``twistd -n tezos-p2p`` node: ports, data directory, current process."""

    index: int
    port: int
    admin_port: int
    data_dir: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    runs: list[Run] = field(default_factory=list)
    #: Whether the process is meant to be running (an exit otherwise is a crash).
    expected: bool = False
    crashes: list[str] = field(default_factory=list)
    sampled_max: int = 0
    #: Admin requests that failed once the node was ready, by cause.
    admin_failures: dict[str, int] = field(default_factory=dict)

    @property
    def run(self) -> Run:
        return self.runs[-1]

    def start(self, now: float, env: dict[str, str]) -> None:
        number = len(self.runs)
        log_path = os.path.join(self.data_dir, f"twistd-{number}.log")
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in reap)
        self.runs.append(Run(number, log_path, now))
        self.expected = True
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the script, which stops the nodes in order
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        self.expected = False
        if self.alive():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.expected = False
        if self.alive():
            assert self.process is not None
            self.run.killed = True
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def reap(self, now: float) -> bool:
        """Whether the process has exited (then its run is closed)."""
        if self.process is None:
            return True
        status = self.process.poll()
        if status is None:
            return False
        self.run.ended_at = now
        self.run.exit_status = status
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None
        return True

    def check_ready(self, now: float) -> bool:
        run = self.run
        if run.ready_at is None:
            try:
                with open(run.log_path, "rb") as handle:
                    if READY in handle.read():
                        run.ready_at = now
            except OSError:
                pass
        return run.ready_at is not None

    def connections(self, timeout: float) -> int | None:
        """The node's running connections (admin API), ``None`` if it does not answer."""
        url = f"http://{HOST}:{self.admin_port}/network/connections"
        cause = "not a JSON list"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                body = json.load(answer)
            if isinstance(body, list):
                return len(body)
        except urllib.error.HTTPError as error:
            cause = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            cause = type(error).__name__
        if self.expected and self.run.ready_at is not None:
            self.admin_failures[cause] = self.admin_failures.get(cause, 0) + 1
        return None

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.run.log_path, "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def replay_peaks(log_path: str, boundary: float | None) -> tuple[int, int]:
    """
    The highest number of connections a process held, from its log, before
    and from the wall-clock time ``boundary`` (log timestamps are whole
    seconds: a line in the second of ``boundary`` counts as from it).
    ``(-1, -1)`` if the log cannot be read.
    """
    limit = None if boundary is None else math.floor(boundary)
    count = 0
    peaks = [0, 0]
    try:
        with open(log_path, "rb") as handle:
            for line in handle:
                if NEW_CONNECTION.search(line):
                    count += 1
                elif DISCONNECTED.search(line):
                    count -= 1
                    continue
                else:
                    continue
                after = limit is not None and _log_time(line) >= limit
                peaks[after] = max(peaks[after], count)
    except OSError:
        return -1, -1
    return peaks[0], peaks[1]


def _log_time(line: bytes) -> float:
    """The timestamp twistd puts at the start of a log line (seconds since the epoch)."""
    stamp = line.split(b" ", 1)[0].decode("ascii", "replace")
    try:
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return math.inf


# -- the benchmark -------------------------------------------------------------------------


@dataclass
class Window:
    """Lowest and highest count of every node during a hold window."""

    low: list[int]
    high: list[int]
    outside: int = 0
    samples: int = 0


class Churn:
    """Runs the scenario; every wait is bounded by the phase's and the overall deadline."""

    def __init__(self, args: argparse.Namespace, base_dir: str) -> None:
        self.args = args
        self.base_dir = base_dir
        self.limits = connections_limits(args.connections, Limits())
        self.min = self.limits.min_connections
        self.max = self.limits.max_connections
        self.idle: float = args.idle_time
        self.origin = time.monotonic()
        self.deadline = self.origin + args.timeout
        self.rng = random.Random(args.seed)
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        ports = free_ports(2 * args.nodes, self.rng)
        self.nodes: list[NodeProcess] = []
        for index in range(args.nodes):
            data_dir = os.path.join(base_dir, f"node-{index:02d}")
            os.makedirs(data_dir, exist_ok=True)
            port, admin_port = ports[2 * index], ports[2 * index + 1]
            peers = ["--peer", f"{HOST}:{ports[0]}"] if index else []
            argv = [
                sys.executable, "-u", "-c", TWISTD, "-n", "--pidfile=", "--logfile=-",
                "tezos-p2p", "--data-dir", data_dir,
                "--listen", f"tcp:{port}:interface={HOST}",
                "--admin", f"tcp:{admin_port}:interface={HOST}",
                "--network", "sandbox", "--no-bootstrap-peers", *peers,
                "--expected-pow", "0", "--identity-workers", "1",
                "--connections", str(args.connections),
                "--maintenance-idle-time", str(args.idle_time),
            ]  # fmt: skip
            self.nodes.append(NodeProcess(index, port, admin_port, data_dir, argv))
        self.timeline: list[dict[str, Any]] = []
        self.phase = "start"
        self.exceeded: list[dict[str, Any]] = []
        self.next_sweep = 0.0
        #: Wall-clock time of the first churn SIGTERM (splits the replayed logs).
        self.churn_wall: float | None = None

    # -- clock and sampling -----------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.origin

    def progress(self, message: str) -> None:
        print(f"[{self.now():7.2f}] {message}", file=sys.stderr, flush=True)

    def sweep(self) -> list[int | None]:
        """One sample of every node; waits for the next tick first."""
        if time.monotonic() > self.deadline:
            raise BenchError(f"overall timeout ({self.args.timeout:g} s) reached")
        pause = self.next_sweep - self.now()
        if pause > 0:
            time.sleep(pause)
        self.next_sweep = self.now() + self.args.interval
        counts: list[int | None] = []
        for node in self.nodes:
            now = self.now()
            if node.process is not None and node.reap(now) and node.expected:
                node.expected = False
                message = f"node {node.index} exited unexpectedly ({node.run.exit_status})"
                node.crashes.append(message)
                self.progress(message + ":\n" + node.log_tail())
            count = None
            if node.alive():
                node.check_ready(now)
                count = node.connections(self.args.request_timeout)
            if count is not None:
                run = node.run
                if count >= self.min and run.first_min_at is None:
                    run.first_min_at = now
                node.sampled_max = max(node.sampled_max, count)
                if count > self.max:
                    self.exceeded.append(
                        {
                            "t": round(now, 3),
                            "phase": self.phase,
                            "node": node.index,
                            "connections": count,
                        }
                    )
            counts.append(count)
        self.timeline.append({"t": round(self.now(), 3), "phase": self.phase, "counts": counts})
        return counts

    def in_bounds(self, counts: Sequence[int | None]) -> bool:
        return all(c is not None and self.min <= c <= self.max for c in counts)

    def watch(self, until: float, done: Callable[[list[int | None]], bool]) -> float | None:
        """Sweep until ``done(counts)`` (returns the time) or ``until`` (returns None)."""
        while True:
            counts = self.sweep()
            if done(counts):
                return self.now()
            if self.now() >= until:
                return None

    def hold(self, periods: float) -> Window:
        """Watch every node for ``periods`` maintenance periods."""
        size = len(self.nodes)
        window = Window(low=[sys.maxsize] * size, high=[-1] * size)
        end = self.now() + periods * self.idle
        while self.now() < end:
            counts = self.sweep()
            window.samples += 1
            for index, count in enumerate(counts):
                value = -1 if count is None else count
                window.low[index] = min(window.low[index], value)
                window.high[index] = max(window.high[index], value)
            if not self.in_bounds(counts):
                window.outside += 1
        return window

    # -- processes ----------------------------------------------------------------------------

    def start(self, nodes: Sequence[NodeProcess]) -> float:
        now = self.now()
        for node in nodes:
            node.start(now, self.env)
        return now

    def wait_ready(self, nodes: Sequence[NodeProcess], timeout: float) -> None:
        until = self.now() + timeout
        while not all(node.check_ready(self.now()) for node in nodes):
            for node in nodes:
                if node.process is not None and node.reap(self.now()):
                    raise BenchError(f"node {node.index} ended early:\n{node.log_tail()}")
            if self.now() >= until:
                raise BenchError(f"nodes not ready after {timeout:g} s")
            if time.monotonic() > self.deadline:
                raise BenchError("overall timeout reached")
            time.sleep(0.05)

    def stop(self, nodes: Sequence[NodeProcess], timeout: float, sample: bool) -> int:
        """SIGTERM, wait (sampling the others if asked), SIGKILL after ``timeout``; kills."""
        for node in nodes:
            node.terminate()
        until = self.now() + timeout
        killed = 0
        while True:
            pending = [node for node in nodes if not node.reap(self.now())]
            if not pending:
                return killed
            if self.now() >= until:
                for node in pending:
                    self.progress(f"node {node.index} still running: SIGKILL")
                    node.kill()
                    killed += 1
                    assert node.process is not None
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        node.process.wait(timeout=10)
                    node.reap(self.now())
                return killed
            if sample and self.now() >= self.next_sweep:
                self.sweep()
            else:
                time.sleep(0.05)

    def stop_all(self) -> None:
        running = [node for node in self.nodes if node.process is not None]
        if running:
            self.stop(running, self.args.stop_timeout, sample=False)

    # -- scenario ------------------------------------------------------------------------------

    def formation(self) -> dict[str, Any]:
        first, others = self.nodes[0], self.nodes[1:]
        self.phase = "formation"
        self.start([first])
        self.wait_ready([first], self.args.ready_timeout)
        self.progress(f"node 0 ready on port {first.port}; starting {len(others)} nodes")
        launch = self.start(others)
        bar = self.args.periods * self.idle
        until = launch + max(self.args.phase_timeout, bar)
        self.watch(until, lambda _: all(n.run.first_min_at is not None for n in self.nodes))
        times: list[float | None] = []
        for node in self.nodes:
            reached = node.run.first_min_at
            times.append(None if reached is None else round(reached - launch, 3))
        ready = [
            None if n.run.ready_at is None else round(n.run.ready_at - n.run.started_at, 3)
            for n in self.nodes
        ]
        after_ready = [
            None
            if n.run.first_min_at is None or n.run.ready_at is None
            else round(n.run.first_min_at - n.run.ready_at, 3)
            for n in self.nodes
        ]
        reached_all = all(t is not None for t in times)
        known = [t for t in times if t is not None]
        result: dict[str, Any] = {
            "clock": "seconds from the spawn of nodes 1..N-1 (node 0 ready just before)",
            "time_to_min_s": times,
            "ready_after_spawn_s": ready,
            "min_after_ready_s": after_ready,
            "all_reached": reached_all,
            "max_s": max(known) if reached_all else None,
            "median_s": round(statistics.median(known), 3) if known else None,
            "bar_s": bar,
            "within_bar": reached_all and max(known) <= bar,
        }
        for key in ("max", "median"):
            value = result[f"{key}_s"]
            result[f"{key}_periods"] = None if value is None else round(value / self.idle, 2)
        self.progress(
            f"formation: max {result['max_s']} s, median {result['median_s']} s (bar {bar:g} s)"
        )
        self.phase = "formation-hold"
        window = self.hold(self.args.hold)
        result["hold"] = self._window_json(window)
        return result

    def churn_round(self, number: int) -> dict[str, Any]:
        count = max(1, len(self.nodes) // 3)
        victims = sorted(self.rng.sample(range(1, len(self.nodes)), count))
        self.phase = f"round-{number}-kill"
        self.progress(f"round {number}: stopping nodes {victims}")
        chosen = [self.nodes[i] for i in victims]
        killed_at = self.now()
        if self.churn_wall is None:
            self.churn_wall = time.time()
        forced = self.stop(chosen, self.args.stop_timeout, sample=True)
        exited_at = self.now()
        self.phase = f"round-{number}-recovery"
        restarted_at = self.start(chosen)
        bar = self.args.periods * self.idle
        until = restarted_at + max(self.args.phase_timeout, bar)
        low_seen = [sys.maxsize] * len(self.nodes)

        def recovered(counts: list[int | None]) -> bool:
            for index, value in enumerate(counts):
                if index not in victims and value is not None:
                    low_seen[index] = min(low_seen[index], value)
            return self.in_bounds(counts)

        back = self.watch(until, recovered)
        ready = [
            None if n.run.ready_at is None else round(n.run.ready_at - n.run.started_at, 3)
            for n in chosen
        ]
        survivors_low = min(low_seen[i] for i in range(len(self.nodes)) if i not in victims)
        recovery = None if back is None else round(back - restarted_at, 3)
        self.progress(
            f"round {number}: recovery {recovery} s after restart "
            f"(survivors went down to {survivors_low})"
        )
        self.phase = f"round-{number}-hold"
        window = self.hold(self.args.hold)
        return {
            "round": number,
            "stopped": victims,
            "exit_time_s": round(exited_at - killed_at, 3),
            "sigkilled": forced,
            "ready_after_spawn_s": ready,
            "recovery_s": recovery,
            "recovery_periods": None if recovery is None else round(recovery / self.idle, 2),
            "recovery_from_sigterm_s": None if back is None else round(back - killed_at, 3),
            "survivors_lowest": survivors_low,
            "within_bar": recovery is not None and recovery <= bar,
            "hold": self._window_json(window),
        }

    def _window_json(self, window: Window) -> dict[str, Any]:
        return {
            "periods": self.args.hold,
            "samples": window.samples,
            "sweeps_outside_bounds": window.outside,
            "lowest": window.low,
            "highest": window.high,
        }

    def peaks(self) -> tuple[list[int], list[int]]:
        """Per node, the highest count before the first churn round and from it (logs)."""
        before: list[int] = []
        after: list[int] = []
        for node in self.nodes:
            replayed = [replay_peaks(run.log_path, self.churn_wall) for run in node.runs]
            before.append(max((b for b, _ in replayed), default=0))
            after.append(max((a for _, a in replayed), default=0))
        return before, after


# -- report --------------------------------------------------------------------------------


def verdict(report: dict[str, Any]) -> dict[str, bool]:
    formation = report.get("formation") or {}
    rounds = report.get("rounds") or []
    windows = [formation.get("hold")] + [r.get("hold") for r in rounds]
    maximum = report["limits"]["max_connections"]
    checks = {
        "formation_within_bar": bool(formation.get("within_bar")),
        "rounds_completed": len(rounds) == report["parameters"]["rounds"],
        "recoveries_within_bar": all(r["within_bar"] for r in rounds),
        "hold_windows_within_bounds": all(
            w is not None and w["sweeps_outside_bounds"] == 0 for w in windows
        ),
        "never_above_max_under_churn": not any(
            not e["phase"].startswith("formation") for e in report.get("sampled_above_max", [])
        )
        and all(0 <= p <= maximum for p in report.get("peaks_churn", [-1])),
        "no_crash": not report.get("crashes") and not report.get("error"),
        "admin_api_answered": not report.get("admin_failures"),
    }
    return checks


def summary(report: dict[str, Any]) -> Iterator[str]:
    limits = report["limits"]
    params = report["parameters"]
    idle = params["idle_time"]
    yield (
        f"{params['nodes']} twistd tezos-p2p nodes, --connections {params['connections']}: "
        f"min {limits['min_connections']}, expected {limits['expected_connections']}, "
        f"max {limits['max_connections']}; maintenance period {idle:g} s, "
        f"bar {params['periods']:g} periods = {params['periods'] * idle:g} s"
    )
    formation = report.get("formation")
    if formation:
        yield "formation (seconds from the spawn of nodes 1..N-1, node 0 ready before):"
        times = formation["time_to_min_s"]
        yield "  time to min_connections per node: " + " ".join(
            "-" if t is None else f"{t:.2f}" for t in times
        )
        yield (
            f"  max {formation['max_s']} s ({formation['max_periods']} periods), "
            f"median {formation['median_s']} s ({formation['median_periods']} periods)"
        )
        hold = formation["hold"]
        yield (
            f"  then over {hold['periods']:g} periods: lowest {hold['lowest']}, "
            f"highest {hold['highest']}"
        )
    for entry in report.get("rounds", []):
        hold = entry["hold"]
        yield (
            f"round {entry['round']}: stopped {entry['stopped']} (exited in "
            f"{entry['exit_time_s']} s), survivors down to {entry['survivors_lowest']}, "
            f"all in [min, max] {entry['recovery_s']} s after restart "
            f"({entry['recovery_periods']} periods)"
        )
        yield (
            f"  then over {hold['periods']:g} periods: lowest {hold['lowest']}, "
            f"highest {hold['highest']}"
        )
    if "peaks" in report:
        yield (
            f"highest connection count per node, replayed from the logs: {report['peaks']} "
            f"(formation {report['peaks_formation']}, churn {report['peaks_churn']}); "
            f"sampled: {report['sampled_max']}; max_connections {limits['max_connections']}"
        )
        above = [i for i, p in enumerate(report["peaks"]) if p > limits["max_connections"]]
        yield (
            "max_connections exceeded at some point of the run by nodes "
            + ", ".join(map(str, above))
            + " (see peaks)"
            if above
            else "max_connections never exceeded during the whole run"
        )
    if report.get("error"):
        yield f"error: {report['error']}"
    for crash in report.get("crashes", []):
        yield f"crash: {crash}"
    for index, failures in report.get("admin_failures", {}).items():
        yield f"node {index}: admin API requests failed after it was ready: {failures}"
    for name, ok in report["checks"].items():
        yield f"  [{'ok' if ok else 'FAIL'}] {name}"
    yield "bar holds" if report["bar_holds"] else "bar does NOT hold"


# -- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.churn",
        description="Network formation and churn with real twistd tezos-p2p processes.",
    )
    parser.add_argument("--nodes", type=int, default=12, help="number of nodes (default 12)")
    parser.add_argument(
        "--connections",
        type=int,
        default=None,
        help="--connections of every node (default: nodes // 2, within [2, 8])",
    )
    parser.add_argument(
        "--idle-time",
        type=float,
        default=25.0,
        help=(
            "--maintenance-idle-time, the maintenance period in seconds (default 25: "
            "3 periods cover the 60 s disconnection delay, see docs/performance.md)"
        ),
    )
    parser.add_argument("--rounds", type=int, default=3, help="churn rounds (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the choice of nodes")
    parser.add_argument(
        "--periods",
        type=float,
        default=3.0,
        help="bar, in maintenance periods, for formation and recovery (default 3)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=3.0,
        help="maintenance periods watched after formation and after each recovery (default 3)",
    )
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between two sweeps (default 0.5)"
    )
    parser.add_argument("--dir", default=None, help="base directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", default=None, help="also write the JSON document to this file")
    parser.add_argument(
        "--samples", default=None, help="write every sweep (time, phase, counts) to this file"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="overall timeout in seconds (default 900)"
    )
    parser.add_argument(
        "--phase-timeout",
        type=float,
        default=60.0,
        help="longest wait for formation or recovery, in seconds (default 60)",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=60.0, help="longest wait for node 0 (default 60)"
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=15.0,
        help="seconds between SIGTERM and SIGKILL (default 15)",
    )
    parser.add_argument(
        "--request-timeout", type=float, default=2.0, help="admin API request timeout"
    )
    args = parser.parse_args(argv)
    if args.nodes < 2:
        parser.error("--nodes: at least 2")
    if args.connections is None:
        args.connections = max(2, min(args.nodes // 2, 8))
    try:
        limits = connections_limits(args.connections, Limits())
    except ValueError as error:
        parser.error(str(error))
    if limits.min_connections > args.nodes - 1:
        parser.error("--connections: min_connections exceeds the number of other nodes")
    for name in ("idle_time", "interval", "timeout", "phase_timeout", "periods"):
        value = getattr(args, name)
        if not (value > 0 and math.isfinite(value)):
            parser.error(f"--{name.replace('_', '-')}: a positive number")
    if args.dir is not None and os.path.isdir(args.dir) and os.listdir(args.dir):
        parser.error("--dir: not empty (old identities and peers.json would skew the run)")
    if args.rounds < 0 or args.hold < 0:
        parser.error("--rounds and --hold are not negative")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    temporary = args.dir is None
    base_dir = tempfile.mkdtemp(prefix="tezos-p2p-churn-") if temporary else args.dir
    os.makedirs(base_dir, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.signal(signal.SIGINT, _interrupt)
    bench = Churn(args, base_dir)
    report: dict[str, Any] = {
        "benchmark": "churn",
        "txtezosp2p": __version__,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "parameters": {
            "nodes": args.nodes,
            "connections": args.connections,
            "idle_time": args.idle_time,
            "rounds": args.rounds,
            "seed": args.seed,
            "periods": args.periods,
            "hold": args.hold,
            "interval": args.interval,
        },
        "limits": {
            "min_connections": bench.min,
            "expected_connections": bench.limits.expected_connections,
            "max_connections": bench.max,
        },
        "rounds": [],
    }
    try:
        report["formation"] = bench.formation()
        for number in range(1, args.rounds + 1):
            report["rounds"].append(bench.churn_round(number))
    except (BenchError, Interrupted, KeyboardInterrupt) as error:
        report["error"] = f"{type(error).__name__}: {error}"
        bench.progress(report["error"])
    finally:
        bench.phase = "stop"
        # the nodes are stopped in order whatever comes now (bounded by --stop-timeout)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            bench.stop_all()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)
    before, after = bench.peaks()
    report["peaks"] = [max(b, a) for b, a in zip(before, after, strict=True)]
    report["peaks_formation"] = before
    report["peaks_churn"] = after
    report["never_above_max_whole_run"] = not bench.exceeded and all(
        0 <= p <= bench.max for p in report["peaks"]
    )
    report["sampled_max"] = [node.sampled_max for node in bench.nodes]
    report["sampled_above_max"] = bench.exceeded
    report["crashes"] = [crash for node in bench.nodes for crash in node.crashes]
    report["admin_failures"] = {
        str(node.index): node.admin_failures for node in bench.nodes if node.admin_failures
    }
    report["unclean_exits"] = [
        {"node": node.index, "run": run.number, "status": run.exit_status}
        for node in bench.nodes
        for run in node.runs
        if run.killed
    ]
    report["checks"] = verdict(report)
    report["bar_holds"] = all(report["checks"].values())
    if args.samples:
        with open(args.samples, "w") as handle:
            json.dump(bench.timeline, handle)
    document = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(document + "\n")
    for line in summary(report):
        print(line)
    print(document)
    if temporary and not args.keep:
        shutil.rmtree(base_dir, ignore_errors=True)
    elif temporary:
        print(f"data directories kept in {base_dir}", file=sys.stderr)
    return 0 if report["bar_holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
