# -*- test-case-name: tests.test_docs -*-
"""
Every command shown in README.md and docs/command-line.md runs as written.

The shell blocks (```sh) are read in order, one command per line
(continuations joined, ``&&`` and ``;`` split, comments dropped), and run
with bash in a new directory that is also ``$HOME``, so ``~/.tezos-p2p``
and ``node1/...`` land there.  Lines starting with ``$ `` in ``sh`` and
``text`` blocks are commands too; in ``sh`` blocks the lines after them are
the output they must print.  README's Python block runs against the nodes
its commands started.

Only two things change, so that the commands run on any machine at once:
the proof of work (``--target 26`` becomes 12; the mainnet node gets
``--expected-pow 0``, a crawl ``--identity-pow 0``) and the ports (each
port the docs use for a node gets a free one, the admin API's default 8742
included, and the mainnet node listens on loopback).  How each command is run (to completion, in the
background until a line appears, stopped with a signal) is in
:data:`POLICIES`; a command none of them excuses must exit 0, so a command
added to the docs is run too, and one that stops working fails this test.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txtezosp2p.identity import IdentityFile
from txtezosp2p.wire.encoding import Ack, Bootstrap, P2PMessageCodec, encode_ack

from .helpers import IDENTITY_A, IDENTITY_B, session_config
from .test_node import free_ports
from .test_session_wire import RawPeer, make_session, take

_log = Logger()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
COMMAND_LINE = os.path.join(ROOT, "docs", "command-line.md")


# -- reading the docs -----------------------------------------------------------


@attrs.frozen
class Command:
    """One command of the docs, as written."""

    text: str
    source: str
    block: int
    background: bool = False
    #: The output the docs show for it (``$ `` lines of ``sh`` blocks), or ``None``.
    expected: tuple[str, ...] | None = None


def _split(line: str) -> list[str]:
    """``a && b; c  # note`` -> ``[a, b, c]``: shell separators and comments outside quotes."""
    parts: list[str] = []
    current = ""
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current += char
        elif char == "#" and (not current or current[-1].isspace()):
            break
        elif line.startswith("&&", index) or char == ";":
            parts.append(current)
            current = ""
            index += 2 if char == "&" else 1
            continue
        else:
            current += char
        index += 1
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def read_commands(path: str) -> list[Command]:
    """The commands of ``path``'s ``sh`` blocks and the ``$`` lines of its ``text`` blocks."""
    name = os.path.relpath(path, ROOT)
    with open(path) as handle:
        text = handle.read()
    out: list[Command] = []
    for block, match in enumerate(re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)):
        language, body = match.group(1), match.group(2)
        if language not in ("sh", "text"):
            continue
        first = text.count("\n", 0, match.start()) + 2
        lines = body.splitlines()
        prompted = any(line.startswith("$ ") for line in lines)
        if language == "text" and not prompted:
            continue
        index = 0
        while index < len(lines):
            line, number = lines[index], first + index
            index += 1
            if prompted:
                if not line.startswith("$ "):
                    continue
                line = line[2:]
                output = []
                while index < len(lines) and not lines[index].startswith("$ "):
                    output.append(lines[index])
                    index += 1
                expected = tuple(output) if language == "sh" else None
            else:
                while line.endswith("\\") and index < len(lines):
                    line = line[:-1] + " " + lines[index].strip()
                    index += 1
                expected = None
            for part in _split(line):
                background = part.endswith(" &")
                command = part[:-2].strip() if background else part
                out.append(Command(command, f"{name}:{number}", block, background, expected))
    return out


# -- how each command runs --------------------------------------------------------


@attrs.frozen
class Policy:
    """
    How to run a command: ``run`` to completion (exit ``exit_code``),
    ``background`` until ``marker`` appears (stopped with ``stop_signal`` at
    the end of its block or of the scenario), ``stream`` until its first
    line then ``stop_signal``, ``excused`` (with the reason), or
    ``known_failure`` (fails today for the reason given; the test says when
    it works, so that the entry goes).
    """

    kind: str
    reason: str = ""
    marker: bytes = b""
    until: str = "scenario"
    stop_signal: int = signal.SIGTERM
    extra: tuple[str, ...] = ()
    exit_code: int = 0


RUNNING = b"running, listening on port"
POLICIES: list[tuple[str, Policy]] = [
    (
        r"^pip install",
        Policy("excused", ".ci/run installs the project from a clean clone as README says"),
    ),
    (
        r"^python -m twisted\.trial tests$",
        Policy("excused", "the test suite itself; .ci/run runs it"),
    ),
    # the README's mainnet node: low proof of work, on loopback, stopped with Ctrl-C
    (
        r"^twistd -n tezos-p2p$",
        Policy(
            "background",
            marker=RUNNING,
            until="block",
            stop_signal=signal.SIGINT,
            extra=("--expected-pow", "0", "--listen", "127.0.0.1:{free}"),
        ),
    ),
    # README: "Each logs new connection to id... at [::ffff:127.0.0.1]:..."
    (r"^twistd .* -d node2 ", Policy("background", marker=b"new connection to id")),
    (r"^twistd ", Policy("background", marker=RUNNING)),
    (
        r"^tezos-p2p sandbox",
        Policy(
            "background", marker=b"nodes on 127.0.0.1", until="block", stop_signal=signal.SIGINT
        ),
    ),
    (
        r"^tezos-p2p rpc get /network/log$",
        Policy("stream", stop_signal=signal.SIGINT),
    ),
    # a crawler mines its own identity: low proof of work
    (r"^tezos-p2p crawl (?!.*--identity-pow)", Policy("run", extra=("--identity-pow", "0"))),
    (r"^tezos-p2p identity check .*--target", Policy("run")),
    (r"", Policy("run")),
]


def policy_for(command: Command) -> Policy:
    for pattern, policy in POLICIES:
        if re.search(pattern, command.text):
            return policy
    raise AssertionError("unreachable: the last policy matches everything")


# -- ports and proof of work ------------------------------------------------------

#: Ports the docs give nodes; each gets a free one.  18730 is an admin base
#: port (node i on 18730+i), so it gets a block of free ports.
DOC_PORTS = (19732, 19733, 8733, 8742, 18730, 18731)
ADMIN_DEFAULT = 8742


class Ports:
    def __init__(self) -> None:
        base = free_ports(5)
        self.map = {18730: base, 18731: base + 1}
        for port in DOC_PORTS:
            if port not in self.map:
                self.map[port] = free_ports(1)

    def rewrite(self, text: str) -> str:
        for written, port in self.map.items():
            text = re.sub(rf"(?<![0-9.]){written}(?![0-9])", str(port), text)
        return text


def adapt(command: Command, policy: Policy, ports: Ports) -> str:
    """The command as run: low proof of work, free ports (see the module's docstring)."""
    text = ports.rewrite(command.text.replace("--target 26", "--target 12"))
    extra = [arg.format(free=free_ports(1)) for arg in policy.extra]
    if text.startswith("twistd ") and "--admin" not in text and "--no-admin" not in text:
        extra += ["--admin", f"tcp:{ports.map[ADMIN_DEFAULT]}:interface=127.0.0.1"]
    return " ".join([text, *map(shlex.quote, extra)])


# -- processes ------------------------------------------------------------------------


class Process(ProcessProtocol):
    """A command's output, a Deferred on a marker, one on its end."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.output = b""
        #: Fires with ``[reason]`` (in a list: a Failure result would be an error).
        self.ended: Deferred[list[Failure]] = Deferred()
        self._waiting: list[tuple[bytes, Deferred[None]]] = []
        self.done = False

    def outReceived(self, data: bytes) -> None:
        self.output += data
        for marker, waiter in list(self._waiting):
            if marker in self.output:
                self._waiting.remove((marker, waiter))
                waiter.callback(None)

    errReceived = outReceived

    def wait_for(self, marker: bytes) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if marker in self.output:
            waiter.callback(None)
        elif self.done:
            waiter.errback(AssertionError(f"{self.command} ended:\n{self.output.decode()}"))
        else:
            self._waiting.append((marker, waiter))
        return waiter

    def signal(self, number: int) -> None:
        if self.transport is not None and not self.done:
            self.transport.signalProcess(number)

    def processEnded(self, reason: Failure) -> None:
        self.done = True
        for _, waiter in self._waiting:
            waiter.errback(AssertionError(f"{self.command} ended:\n{self.output.decode()}"))
        self._waiting = []
        self.ended.callback([reason])


def record_session(directory: str, identity_path: str) -> None:
    """``out.bin`` and ``in.bin``: what the identity's side sent and received on one connection."""
    identity = IdentityFile(identity_path).load()
    config = session_config(identity, codec=P2PMessageCodec())
    session, transport, _ = make_session(config, incoming=False)
    peer = RawPeer(IDENTITY_B if identity != IDENTITY_B else IDENTITY_A, incoming=True)
    sent = take(transport)
    peer.keys_from(sent)
    received = peer.frame + peer.seal(b"\x00\x00") + peer.seal(encode_ack(Ack()))
    received += peer.seal(b"\x00\x00\x00\x02\x00\x02")  # Bootstrap
    session.dataReceived(received)
    sent += take(transport)
    session.write_now(Bootstrap())
    assert transport.producer is not None
    transport.producer.resumeProducing()
    sent += take(transport)
    for name, data in (("out.bin", sent), ("in.bin", received)):
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


#: README's Python block, run to its end: the reactor stops once ``d`` fires.
PYTHON_WRAPPER = """
import sys
{snippet}
outcome = []
d.addBoth(outcome.append)
d.addBoth(lambda _: reactor.stop())
reactor.run()
print(repr(outcome))
sys.exit(0 if outcome and not hasattr(outcome[0], "getErrorMessage") else 1)
"""


class Scenario:
    """The commands of one document, run in order in one directory."""

    def __init__(self, case: TestCase, path: str) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.case = case
        self.path = path
        self.directory = os.path.abspath(case.mktemp())
        os.makedirs(self.directory)
        self.ports = Ports()
        env = dict(os.environ)
        env["HOME"] = self.directory
        env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        env["TEZOS_P2P_ADMIN"] = f"http://127.0.0.1:{self.ports.map[ADMIN_DEFAULT]}"
        env.pop("TXTEZOSP2P_NO_EXTENSIONS", None)
        self.env = env
        self.running: list[tuple[Process, Policy, int]] = []
        #: What ran, for the report: (source, command as run, outcome).
        self.log: list[tuple[str, str, str]] = []
        self.before: dict[str, Callable[[], object]] = {}

    def spawn(self, text: str) -> Process:
        process = Process(text)
        self.reactor.spawnProcess(
            process, "/bin/bash", ["bash", "-c", f"exec {text}"], env=self.env, path=self.directory
        )
        return process

    async def run(
        self, commands: list[Command], then: Callable[[], Deferred[None]] | None = None
    ) -> None:
        """Run ``commands``, then ``then()`` while the last processes still run, then stop them."""
        block = None
        try:
            for command in commands:
                if command.block != block and block is not None:
                    await self.stop(block)
                block = command.block
                await self.one(command)
            if then is not None:
                await then()
        finally:
            await self.stop(None)
            for source, text, outcome in self.log:  # in _trial_temp/test.log
                _log.info("{source}: {outcome}: {text}", source=source, outcome=outcome, text=text)

    async def stop(self, block: int | None) -> None:
        """Stop the processes of ``block`` that end with it, or every process (``None``)."""
        for process, policy, started in list(self.running):
            if block is not None and (policy.until != "block" or started != block):
                continue
            self.running.remove((process, policy, started))
            if not process.done:
                process.signal(policy.stop_signal)
            [reason] = await process.ended
            text = process.output.decode(errors="replace")
            self.case.assertNotIn("Traceback", text, f"{process.command}:\n{text}")
            if isinstance(reason.value, ProcessTerminated) and reason.value.exitCode is not None:
                self.case.assertEqual(reason.value.exitCode, 0, f"{process.command}:\n{text}")

    async def one(self, command: Command) -> None:
        policy = policy_for(command)
        if policy.kind == "excused":
            self.log.append((command.source, command.text, f"excused: {policy.reason}"))
            return
        text = adapt(command, policy, self.ports)
        for prefix, prepare in self.before.items():
            if command.text.startswith(prefix):
                prepare()
        where = f"{command.source}: {command.text}\n(run as: {text})"
        if policy.kind == "background":
            process = self.spawn(text)
            self.running.append((process, policy, command.block))
            await process.wait_for(policy.marker)
            self.log.append((command.source, text, "started"))
            return
        if policy.kind == "stream":
            process = self.spawn(text)
            await process.wait_for(b"\n")
            process.signal(policy.stop_signal)
            await process.ended
            self.log.append((command.source, text, "streamed"))
            return
        process = self.spawn(text)
        [reason] = await process.ended
        code = 0 if reason.check(ProcessDone) else getattr(reason.value, "exitCode", None)
        output = process.output.decode(errors="replace")
        if policy.kind == "known_failure":
            if code == 0:
                self.case.fail(f"{where}\nworks now: remove its known_failure policy")
            self.log.append((command.source, text, f"known failure: {policy.reason}"))
            return
        expected_code = policy.exit_code
        if command.expected is not None:
            shown = "\n".join(command.expected).strip()
            self.case.assertEqual(output.strip(), shown, where)
            expected_code = 1 if shown.startswith("tezos-p2p:") else 0
        self.case.assertEqual(code, expected_code, f"{where}\n{output}")
        self.case.assertNotIn("Traceback", output, where)
        self.log.append((command.source, text, f"exit {code}"))

    async def python(self, snippet: str) -> None:
        process = Process("README's Python block")
        program = PYTHON_WRAPPER.format(snippet=snippet)
        self.reactor.spawnProcess(
            process, sys.executable, [sys.executable, "-c", self.ports.rewrite(program)],
            env=self.env, path=self.directory,
        )  # fmt: skip
        [reason] = await process.ended
        output = process.output.decode(errors="replace")
        # d fired with what session.write gave (None), not a Failure: the session ran
        self.case.assertTrue(reason.check(ProcessDone), output)
        self.case.assertEqual(output.strip(), "[None]")


# -- the tests ------------------------------------------------------------------------


class ReadingTests(SynchronousTestCase):
    def test_split(self) -> None:
        self.assertEqual(_split("a x && b 'c; d' ; e  # f; g"), ["a x", "b 'c; d'", "e"])
        self.assertEqual(_split("tezos-p2p rpc patch '/p/[::1]:9732' '{\"a\": 1}'"),
                         ["tezos-p2p rpc patch '/p/[::1]:9732' '{\"a\": 1}'"])  # fmt: skip

    def test_every_command_has_a_policy(self) -> None:
        """The docs have commands, and none is excused without a reason."""
        for path in (README, COMMAND_LINE):
            commands = read_commands(path)
            self.assertGreater(len(commands), 5, path)
            for command in commands:
                policy = policy_for(command)
                if policy.kind in ("excused", "known_failure"):
                    self.assertTrue(policy.reason, command)

    def test_rewrites(self) -> None:
        ports = Ports()
        command = Command(
            "twistd -n --pidfile= tezos-p2p -d node2 --listen tcp:19733:interface=127.0.0.1 "
            "--peer 127.0.0.1:19732 --admin tcp:8733:interface=127.0.0.1", "x", 0
        )  # fmt: skip
        text = adapt(command, policy_for(command), ports)
        self.assertIn(f"tcp:{ports.map[19733]}:interface=127.0.0.1", text)
        self.assertIn(f"127.0.0.1:{ports.map[19732]}", text)
        self.assertNotIn("--admin tcp:8742", text)
        bare = Command("twistd -n tezos-p2p", "x", 0)
        text = adapt(bare, policy_for(bare), ports)
        self.assertIn("--expected-pow 0 --listen 127.0.0.1:", text)
        self.assertIn(f"--admin tcp:{ports.map[8742]}:interface=127.0.0.1", text)
        # points in commands are left alone
        ban = Command("tezos-p2p ban 203.0.113.7:9732", "x", 0)
        self.assertEqual(adapt(ban, policy_for(ban), ports), "tezos-p2p ban 203.0.113.7:9732")


class DocsTests(TestCase):
    """The commands of the docs, run."""

    timeout = 300

    def test_readme(self) -> Deferred[None]:
        async def scenario() -> None:
            run = Scenario(self, README)
            run.before["tezos-p2p session decode"] = lambda: record_session(
                run.directory, os.path.join(run.directory, "node1", "identity.json")
            )
            with open(README) as handle:
                [snippet] = re.findall(r"^```python\n(.*?)^```", handle.read(), re.S | re.M)
            # the Python block talks to node1, started by the commands: it runs before they stop
            await run.run(
                read_commands(README),
                then=lambda: Deferred.fromCoroutine(run.python(snippet)),
            )

        return Deferred.fromCoroutine(scenario())

    def test_command_line(self) -> Deferred[None]:
        async def scenario() -> None:
            run = Scenario(self, COMMAND_LINE)
            os.makedirs(os.path.join(run.directory, "node1"))
            identity = os.path.join(run.directory, "node1", "identity.json")
            IdentityFile(identity).save(IDENTITY_A)
            run.before["tezos-p2p session decode"] = lambda: record_session(run.directory, identity)
            # the admin commands talk to a running node at the default endpoint
            node = Command(
                "twistd -n --pidfile= tezos-p2p -d node --listen tcp:0:interface=127.0.0.1 "
                "--network sandbox --expected-pow 0",
                "the node the admin commands talk to", -1,
            )  # fmt: skip
            await run.one(node)
            await run.run(read_commands(COMMAND_LINE))

        return Deferred.fromCoroutine(scenario())
