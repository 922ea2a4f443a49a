# -*- test-case-name: tests.test_cli -*-
"""
The ``tezos-p2p`` console script, run as a subprocess exactly as a user
runs it: exit codes, JSON output, one-line errors, and ``session decode``
on bytes recorded from a real session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.identity import IdentityFile
from txtezosp2p.wire.encoding import Ack, Bootstrap, P2PMessageCodec, encode_ack

from .helpers import IDENTITY_A, IDENTITY_B, session_config
from .test_session_wire import RawPeer, make_session, take


def _script() -> list[str]:
    """The installed console script; the module entry point if it is not installed."""
    beside = os.path.join(os.path.dirname(sys.executable), "tezos-p2p")
    if os.path.exists(beside):
        return [beside]
    found = shutil.which("tezos-p2p")
    if found:
        return [found]
    return [sys.executable, "-m", "txtezosp2p.node.cli"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_script(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


NACK_HEX = (
    "010001000000260000000c312e322e332e343a39373332000000125b323030313a6462383a3a315d3a39373332"
)


class CodecCommandTests(SynchronousTestCase):
    def assertOneLineError(self, result: subprocess.CompletedProcess[str]) -> None:
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("tezos-p2p: "), lines[0])
        self.assertNotIn("Traceback", result.stderr)

    def test_list(self) -> None:
        result = run("codec", "list")
        self.assertEqual(result.returncode, 0)
        names = [line.split()[0] for line in result.stdout.splitlines()]
        for name in (
            "connection_message",
            "metadata",
            "ack",
            "p2p_message",
            "point",
            "peer_id",
            "network_version",
        ):
            self.assertIn(name, names)

    def test_decode_ack(self) -> None:
        result = run("codec", "decode", "ack", NACK_HEX)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            json.loads(result.stdout),
            {"nack_motive": 1, "nack_list": ["1.2.3.4:9732", "[2001:db8::1]:9732"]},
        )

    def test_round_trips(self) -> None:
        """encode(decode(x)) == x for one value of every encoding."""
        samples = {
            "connection_message": (
                "2604"
                "5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a"
                "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95"
                "111111111111111111111111111111111111111111111111"
                "0000000d54455a4f535f4d41494e4e455400020001"
            ),
            "metadata": "00ff",
            "ack": NACK_HEX,
            "p2p_message": (
                "0000002200040000000c312e322e332e343a39373332bfec777657369f33dd211f57eb32598f"
            ),
            "point": "000000125b323030313a6462383a3a315d3a39373332",
            "peer_id": "47f5c302e9ed3c9a73279fe9f4ad99b6",
            "network_version": "0000000d54455a4f535f4d41494e4e455400020001",
        }
        for name, data in samples.items():
            decoded = run("codec", "decode", name, data)
            self.assertEqual(decoded.returncode, 0, (name, decoded.stderr))
            encoded = run("codec", "encode", name, decoded.stdout)
            self.assertEqual(encoded.returncode, 0, (name, encoded.stderr))
            self.assertEqual(encoded.stdout.strip(), data, name)

    def test_peer_id_json(self) -> None:
        result = run("codec", "decode", "peer_id", "47f5c302e9ed3c9a73279fe9f4ad99b6")
        self.assertEqual(json.loads(result.stdout), "idrRoknJh9zwEePNswF3MPGFzmKaVp")

    def test_standard_input(self) -> None:
        result = run("codec", "encode", "p2p_message", "-", stdin='{"kind": "Bootstrap"}')
        self.assertEqual(result.stdout.strip(), "000000020002")

    def test_invalid_inputs(self) -> None:
        cases = [
            ("codec", "decode", "ack", "zz"),
            ("codec", "decode", "ack", "02"),
            ("codec", "decode", "p2p_message", "00000002ffff"),
            ("codec", "decode", "point", "00000004abcd"),
            ("codec", "decode", "connection_message", "00"),
            ("codec", "decode", "no_such_encoding", "00"),
            ("codec", "encode", "metadata", "{not json"),
            ("codec", "encode", "metadata", '{"disable_mempool": 1}'),
            ("codec", "encode", "point", '"example.org:9732"'),
            ("codec", "encode", "peer_id", '"idXXX"'),
        ]
        for args in cases:
            with self.subTest(args=args):
                self.assertOneLineError(run(*args))


class IdentityCommandTests(SynchronousTestCase):
    def test_generate_show_check(self) -> None:
        directory = self.mktemp()
        generated = run("identity", "generate", "--data-dir", directory, "--target", "8")
        self.assertEqual(generated.returncode, 0, generated.stderr)
        identity = IdentityFile.in_directory(directory).load()
        self.assertIn(str(identity.peer_id), generated.stdout)
        shown = json.loads(run("identity", "show", "--data-dir", directory).stdout)
        self.assertEqual(
            shown,
            {
                "peer_id": str(identity.peer_id),
                "public_key": identity.public_key.hex(),
                "proof_of_work_stamp": identity.proof_of_work_stamp.hex(),
            },
        )
        self.assertNotIn(identity.secret_key.hex(), json.dumps(shown))
        self.assertEqual(
            run("identity", "check", "--data-dir", directory, "--target", "8").returncode, 0
        )
        refused = run("identity", "generate", "--data-dir", directory, "--target", "8")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("already exists", refused.stderr)
        # the expected amount of work is announced before mining
        self.assertIn("mining an identity of difficulty 8: about 0.0 M stamps", generated.stderr)

    def test_progress(self) -> None:
        """A live line on a terminal; a line every 10 s otherwise."""
        import io

        from txtezosp2p.node.cli import _progress_printer

        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        terminal = Terminal()
        show = _progress_printer(terminal, 20.0, clock=lambda: 0.0)
        show(1 << 19, 1.0)  # half the expected 2**20 stamps in one second
        self.assertEqual(
            terminal.getvalue(),
            "\rmining: 50% of 1.0 M expected stamps, 0.52 M/s, 0:01 elapsed, about 0:01 left\x1b[K",
        )
        now = [0.0]
        piped = io.StringIO()
        show = _progress_printer(piped, 20.0, clock=lambda: now[0])
        show(1 << 18, 1.0)
        self.assertEqual(piped.getvalue(), "")
        now[0] = 10.0
        show(1 << 21, 2.0)
        self.assertEqual(
            piped.getvalue(),
            "mining: 200% of 1.0 M expected stamps, 1.05 M/s, 0:02 elapsed, any moment now "
            "(mining is a lottery)\n",
        )

    def _write(self, value: dict[str, Any]) -> str:
        path: str = self.mktemp()
        with open(path, "w") as handle:
            json.dump(value, handle)
        return path

    def test_check_targets(self) -> None:
        path = self._write(IDENTITY_A.to_json())
        self.assertEqual(run("identity", "check", "--file", path).returncode, 0)  # 26 by default
        failed = run("identity", "check", "--file", path, "--target", "27")
        self.assertEqual(failed.returncode, 1)
        self.assertEqual(len(failed.stderr.strip().splitlines()), 1)

    def test_check_mismatching_keys(self) -> None:
        value = IDENTITY_A.to_json()
        value["secret_key"] = IDENTITY_B.secret_key.hex()
        failed = run("identity", "check", "--file", self._write(value), "--target", "0")
        self.assertEqual(failed.returncode, 1)
        self.assertNotIn("Traceback", failed.stderr)

    def test_missing_file(self) -> None:
        failed = run("identity", "show", "--file", self.mktemp())
        self.assertEqual(failed.returncode, 1)
        self.assertEqual(len(failed.stderr.strip().splitlines()), 1)


BOOTSTRAP_RECORD = b"\x00\x00\x00\x02\x00\x02"


class SessionDecodeTests(SynchronousTestCase):
    """``session decode`` on the bytes one side of a real session sent and received."""

    def record(
        self, incoming: bool, chunks: Callable[[RawPeer], bytes] | None = None
    ) -> tuple[str, str, str]:
        config = session_config(IDENTITY_A, codec=P2PMessageCodec())
        session, transport, _ = make_session(config, incoming=incoming)
        peer = RawPeer(IDENTITY_B, incoming=not incoming)
        sent = take(transport)
        peer.keys_from(sent)
        received = peer.frame + peer.seal(b"\x00\x00") + peer.seal(encode_ack(Ack()))
        if chunks is None:
            received += peer.seal(BOOTSTRAP_RECORD)
        else:
            received += chunks(peer)
        session.dataReceived(received)
        sent += take(transport)
        if chunks is None:
            self.successResultOf(session.when_established())
        if session.close_reason is None:  # (not when the received bytes made it fail)
            session.write_now(Bootstrap())
            assert transport.producer is not None
            transport.producer.resumeProducing()
            sent += take(transport)
        directory = self.mktemp()
        os.makedirs(directory)
        paths = []
        for name, data in (("sent", sent), ("received", received)):
            path = os.path.join(directory, name)
            with open(path, "wb") as handle:
                handle.write(data)
            paths.append(path)
        identity = os.path.join(directory, "identity.json")
        IdentityFile(identity).save(IDENTITY_A)
        return identity, paths[0], paths[1]

    def decode(self, incoming: bool) -> list[dict[str, Any]]:
        identity, sent, received = self.record(incoming)
        result = run(
            "session", "decode", "--identity", identity, "--sent", sent, "--received", received
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def check(self, lines: list[dict[str, Any]]) -> None:
        kinds = [(line["direction"], line["kind"]) for line in lines]
        self.assertEqual(
            kinds,
            [
                ("sent", "connection_message"),
                ("received", "connection_message"),
                ("sent", "metadata"),
                ("received", "metadata"),
                ("sent", "ack"),
                ("received", "ack"),
                ("sent", "p2p_message"),
                ("received", "p2p_message"),
            ],
        )
        self.assertEqual(lines[0]["message"]["pubkey"], IDENTITY_A.public_key.hex())
        self.assertEqual(lines[2]["message"], {"disable_mempool": False, "private_node": False})
        self.assertEqual(lines[5]["message"], {"ack": {}})
        self.assertEqual(lines[6]["message"], {"kind": "Bootstrap"})
        self.assertEqual((lines[6]["chunk"], lines[6]["chunks"]), (2, 1))

    def test_outgoing(self) -> None:
        self.check(self.decode(incoming=False))

    def test_incoming(self) -> None:
        self.check(self.decode(incoming=True))

    def test_records_across_chunks(self) -> None:
        """Each message names its first chunk and how many chunks it spans."""

        def chunks(peer: RawPeer) -> bytes:
            # three records cut into 5-byte chunks (2-3, 3-4, 4-5), then two in chunk 6
            return peer.seal(BOOTSTRAP_RECORD * 3, chunk_size=5) + peer.seal(BOOTSTRAP_RECORD * 2)

        identity, sent, received = self.record(False, chunks)
        result = run(
            "session", "decode", "--identity", identity, "--sent", sent, "--received", received
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        placed = [
            (line["chunk"], line["chunks"])
            for line in lines
            if line["direction"] == "received" and line["kind"] == "p2p_message"
        ]
        self.assertEqual(placed, [(2, 2), (3, 2), (4, 2), (6, 1), (6, 1)])

    def test_oversized_record(self) -> None:
        def chunks(peer: RawPeer) -> bytes:
            return peer.seal(BOOTSTRAP_RECORD + (100 << 20).to_bytes(4, "big"))

        identity, sent, received = self.record(False, chunks)
        result = run(
            "session", "decode", "--identity", identity, "--sent", sent, "--received", received
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn("chunk 2: record of", result.stderr)
        self.assertIn('"Bootstrap"', result.stdout)  # the record before it is printed

    def test_wrong_identity(self) -> None:
        identity, sent, received = self.record(False)
        IdentityFile(identity).save(IDENTITY_B, overwrite=True)
        result = run(
            "session", "decode", "--identity", identity, "--sent", sent, "--received", received
        )
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1)

    def test_garbled_recording(self) -> None:
        identity, sent, received = self.record(False)
        with open(received, "r+b") as handle:
            data = bytearray(handle.read())
            data[-3] ^= 0xFF
            handle.seek(0)
            handle.write(data)
        result = run(
            "session", "decode", "--identity", identity, "--sent", sent, "--received", received
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn("decipher", result.stderr)
        self.assertGreater(len(result.stdout.splitlines()), 4)  # what came before is printed
