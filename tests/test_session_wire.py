# -*- test-case-name: tests.test_session_wire -*-
"""
One :class:`Session` on a ``StringTransport`` against a peer written by
hand from the codecs and the cipher: byte-exact checks against wire.md
Appendix A.2, timeouts on a simulated clock, hostile input, back-pressure.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.identity import Identity
from txtezosp2p.limits import Limits
from txtezosp2p.session import Accept, Session, SessionConfig, Versions
from txtezosp2p.wire.crypto import ChunkCipher, generate_nonces, precompute
from txtezosp2p.wire.encoding import (
    Ack,
    Bootstrap,
    BytesCodec,
    ConnectionMessage,
    ConnectionMetadata,
    Nack,
    NetworkVersion,
    P2PMessageCodec,
    encode_ack,
)
from txtezosp2p.wire.errors import (
    ConnectionClosed,
    DecipherError,
    DecodingError,
    HandshakeTimeout,
    InvalidAuth,
    InvalidChunksSize,
    InvalidMessageSize,
    NackMotive,
    RejectedByNack,
    RejectedSocketConnection,
    RejectedWithoutNack,
)
from txtezosp2p.wire.ids import Point

from .helpers import IDENTITY_A, IDENTITY_B, session_config

MAINNET = Versions("TEZOS_MAINNET")
SANDBOX_VERSION = NetworkVersion("SANDBOXED_TEZOS", 2, 1)

# wire.md Appendix A.2
A_CONN = bytes.fromhex(
    "00672604"
    "5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a"
    "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95"
    "111111111111111111111111111111111111111111111111"
    "0000000d54455a4f535f4d41494e4e455400020001"
)
B_CONN = bytes.fromhex(
    "00672605"
    "6e699289a794e629a13335c6fb7cfe6ee143c29609b020a49b5a575593824459"
    "657ef08d3a806354c1a310b64b86a13a79f76302d249995f"
    "222222222222222222222222222222222222222222222222"
    "0000000d54455a4f535f4d41494e4e455400020001"
)
A_METADATA = bytes.fromhex("001274e5663a789d104321278f41e57420371ac9")
B_METADATA = bytes.fromhex("0012d8418dbebbe0ec70a7e7e7e90d1adac5f501")
A_ACK = bytes.fromhex("0011a50fe6a6a48e5b9b0b98a0762230fd58e2")
A_BOOTSTRAP = bytes.fromhex("00161b38163eb93aa60d4f1590bc076339ffe24c26a5b42d")


class RawPeer:
    """The remote end, driven step by step by the test."""

    def __init__(
        self,
        identity: Identity,
        *,
        incoming: bool,
        port: int | None = 9733,
        nonce: bytes = b"\x22" * 24,
        version: NetworkVersion = SANDBOX_VERSION,
    ) -> None:
        self.identity = identity
        self.incoming = incoming
        self.message = ConnectionMessage(
            port, identity.public_key, identity.proof_of_work_stamp, nonce, version
        )
        self.frame = self.message.frame()
        self.cipher: ChunkCipher | None = None

    def keys_from(self, their_frame: bytes) -> ChunkCipher:
        theirs = ConnectionMessage.decode(their_frame[2:])
        key = precompute(self.identity.secret_key, theirs.public_key)
        local, remote = generate_nonces(
            incoming=self.incoming, sent_msg=self.frame, recv_msg=their_frame
        )
        self.cipher = ChunkCipher(key, local, remote)
        return self.cipher

    def seal(self, plaintext: bytes, chunk_size: int = 65517) -> bytes:
        assert self.cipher is not None
        return self.cipher.seal(plaintext, chunk_size)

    def open_all(self, data: bytes) -> list[bytes]:
        assert self.cipher is not None
        chunks = []
        offset = 0
        while offset < len(data):
            plain, offset, frames, error = self.cipher.open(data, offset, 1)
            assert error is None and frames == 1
            chunks.append(plain)
        return chunks


def make_session(
    config: SessionConfig, *, incoming: bool, clock: Clock | None = None
) -> tuple[Session, StringTransport, Clock]:
    clock = clock or Clock()
    session = Session(
        config, clock, incoming=incoming, point=None if incoming else Point("127.0.0.1", 9733)
    )
    transport = StringTransport(peerAddress=None)
    session.makeConnection(transport)
    return session, transport, clock


def take(transport: StringTransport) -> bytes:
    data = transport.value()
    transport.clear()
    return bytes(data)


class RunningPair:
    """A Session (dialler, identity A) brought to Running against a RawPeer (B)."""

    def __init__(self, testcase: SynchronousTestCase, **overrides: Any) -> None:
        config = session_config(IDENTITY_A, **overrides)
        self.session, self.transport, self.clock = make_session(config, incoming=False)
        self.peer = RawPeer(IDENTITY_B, incoming=True)
        sent = take(self.transport)
        self.peer.keys_from(sent)
        self.session.dataReceived(self.peer.frame + self.peer.seal(b"\x00\x00"))
        self.session.dataReceived(self.peer.seal(encode_ack(Ack())))
        chunks = self.peer.open_all(take(self.transport))
        testcase.assertEqual(chunks, [b"\x00\x00", b"\x00"])
        self.established = testcase.successResultOf(self.session.when_established())
        # the pull producer is registered; behave like a transport that flushed
        self.producer = self.transport.producer

    def flush(self) -> bytes:
        """Let the transport ask for more (what a drained socket does)."""
        if self.producer is not None:
            self.producer.resumeProducing()
        return take(self.transport)


class WireExactTests(SynchronousTestCase):
    """
    The session emits the exact bytes of wire.md Appendix A.2: a recorded
    handshake replayed through the public knobs of a deterministic session
    (``SessionConfig.message_nonce``, ``SessionConfig.random_bytes``).
    """

    def test_nonce_knobs(self) -> None:
        drawn: list[int] = []

        def source(n: int) -> bytes:
            drawn.append(n)
            return bytes(range(n))

        config = session_config(IDENTITY_A, random_bytes=source)
        self.assertEqual(config.connection_nonce(), bytes(range(24)))
        self.assertEqual(drawn, [24])
        fixed = session_config(IDENTITY_A, message_nonce=b"\x07" * 24, random_bytes=source)
        self.assertEqual(fixed.connection_nonce(), b"\x07" * 24)
        self.assertEqual(drawn, [24])
        self.assertRaises(ValueError, session_config, IDENTITY_A, message_nonce=b"short")
        short = session_config(IDENTITY_A, random_bytes=lambda n: b"")
        self.assertRaises(ValueError, short.connection_nonce)

    def test_dialler_bytes(self) -> None:
        config = SessionConfig(
            identity=IDENTITY_A,
            versions=MAINNET,
            codec=P2PMessageCodec(),
            pow_target=26.0,
            advertised_port=9732,
            message_nonce=b"\x11" * 24,  # the deterministic-session knob
        )
        session, transport, _ = make_session(config, incoming=False)
        self.assertEqual(take(transport), A_CONN)
        session.dataReceived(B_CONN)
        self.assertEqual(take(transport), A_METADATA)
        session.dataReceived(B_METADATA)
        info = self.successResultOf(session.when_authenticated())
        self.assertEqual(str(info.peer_id), "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf")
        self.assertEqual(info.announced_version, NetworkVersion("TEZOS_MAINNET", 2, 1))
        self.assertEqual(info.remote_metadata, ConnectionMetadata(False, False))
        # the gate (version negotiation) accepted: our Ack went out
        self.assertEqual(take(transport), A_ACK)
        # B's Ack, sealed with B's send nonce + 1
        b_key = precompute(IDENTITY_B.secret_key, IDENTITY_A.public_key)
        b_local, b_remote = generate_nonces(incoming=True, sent_msg=B_CONN, recv_msg=A_CONN)
        b_cipher = ChunkCipher(b_key, b_local, b_remote)
        self.assertEqual(b_cipher.seal(b"\x00\x00"), B_METADATA)
        session.dataReceived(b_cipher.seal(encode_ack(Ack())))
        self.successResultOf(session.when_established())
        self.assertEqual(session.negotiated_version, NetworkVersion("TEZOS_MAINNET", 2, 1))
        session.write_now(Bootstrap())
        assert transport.producer is not None
        transport.producer.resumeProducing()
        self.assertEqual(take(transport), A_BOOTSTRAP)
        # and B reads what A sent, in order
        plain, _, frames, error = b_cipher.open(A_METADATA + A_ACK + A_BOOTSTRAP)
        self.assertEqual((plain, frames, error), (b"\x00\x00\x00\x00\x00\x00\x02\x00\x02", 3, None))

    def test_responder_bytes(self) -> None:
        """B accepting A: B's metadata chunk is the vector's."""
        config = SessionConfig(
            identity=IDENTITY_B,
            versions=MAINNET,
            codec=P2PMessageCodec(),
            pow_target=26.0,
            advertised_port=9733,
            random_bytes=lambda n: b"\x22" * n,  # the session's random source
        )
        session, transport, _ = make_session(config, incoming=True)
        self.assertEqual(take(transport), B_CONN)
        session.dataReceived(A_CONN)
        self.assertEqual(take(transport), B_METADATA)
        session.dataReceived(A_METADATA)
        info = self.successResultOf(session.when_authenticated())
        self.assertEqual(info.id_point.port, 9732)  # announced by A
        session.dataReceived(A_ACK + A_BOOTSTRAP)
        self.successResultOf(session.when_established())
        self.assertEqual(self.successResultOf(session.read()), Bootstrap())


class HandshakeTimeTests(SynchronousTestCase):
    def test_authentication_timeout(self) -> None:
        """An incoming handshake must finish within authentication_timeout (5 s)."""
        session, transport, clock = make_session(session_config(IDENTITY_A), incoming=True)
        established = session.when_established()
        clock.advance(4.9)
        self.assertNoResult(established)
        clock.advance(0.2)
        self.failureResultOf(established, HandshakeTimeout)
        self.assertTrue(transport.disconnecting)

    def test_connection_timeout(self) -> None:
        """An outgoing one gets connection_timeout (10 s)."""
        session, _, clock = make_session(session_config(IDENTITY_A), incoming=False)
        established = session.when_established()
        clock.advance(9.9)
        self.assertNoResult(established)
        clock.advance(0.2)
        self.failureResultOf(established, HandshakeTimeout)

    def test_timeout_covers_ack(self) -> None:
        """The deadline covers the Ack exchange too."""
        config = session_config(IDENTITY_A)
        session, transport, clock = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        self.successResultOf(session.when_authenticated())
        clock.advance(10.1)
        self.failureResultOf(session.when_established(), HandshakeTimeout)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_no_timer_left_once_running(self) -> None:
        pair = RunningPair(self)
        self.assertEqual(pair.clock.getDelayedCalls(), [])


class HostileInputTests(SynchronousTestCase):
    def test_garbage_connection_message(self) -> None:
        session, transport, _ = make_session(session_config(IDENTITY_A), incoming=True)
        session.dataReceived(b"\x00\x05hello")
        self.failureResultOf(session.when_established(), DecodingError)
        self.assertTrue(transport.disconnecting)

    def test_data_before_ack_is_not_a_message(self) -> None:
        """A peer that sends a message where its Ack belongs is refused; nothing is delivered."""
        config = session_config(IDENTITY_A)
        session, transport, _ = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        session.dataReceived(peer.seal(b"\x00\x00\x00\x03abc"))
        self.failureResultOf(session.when_established(), DecodingError)
        self.failureResultOf(session.read(), DecodingError)

    def test_garbled_ack_is_invalid_auth(self) -> None:
        config = session_config(IDENTITY_A)
        session, transport, _ = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        ack = bytearray(peer.seal(b"\x00"))
        ack[5] ^= 1
        session.dataReceived(bytes(ack))
        self.failureResultOf(session.when_established(), InvalidAuth)

    def test_peer_hangs_up_instead_of_ack(self) -> None:
        config = session_config(IDENTITY_A)
        session, transport, _ = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        session.connectionLost(ConnectionClosed())  # type: ignore[arg-type]
        self.failureResultOf(session.when_established(), RejectedSocketConnection)

    def test_nack_with_points(self) -> None:
        config = session_config(IDENTITY_A)
        session, transport, _ = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        points = (Point("10.0.0.1", 9732),)
        session.dataReceived(peer.seal(encode_ack(Nack(NackMotive.TOO_MANY_CONNECTIONS, points))))
        error = self.failureResultOf(session.when_established(), RejectedByNack).value
        self.assertEqual(error.alternative_points, points)

    def test_not_established_after_a_nack(self) -> None:
        """We sent our Ack, the peer answered with a Nack: the session never ran."""
        session, transport, _ = make_session(session_config(IDENTITY_A), incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        self.assertIsNotNone(session.negotiated_version)  # our Ack went out
        self.assertFalse(session.established)
        session.dataReceived(peer.seal(encode_ack(Nack(NackMotive.TOO_MANY_CONNECTIONS, ()))))
        self.failureResultOf(session.when_established(), RejectedByNack)
        self.assertFalse(session.established)
        self.assertTrue(RunningPair(self).session.established)

    def test_garbled_chunk_when_running(self) -> None:
        pair = RunningPair(self)
        chunk = bytearray(pair.peer.seal(b"\x00\x00\x00\x02hi"))
        chunk[-1] ^= 0x80
        pair.session.dataReceived(bytes(chunk))
        self.failureResultOf(pair.session.read(), DecipherError)
        self.assertTrue(pair.transport.disconnecting)

    def test_messages_before_a_bad_chunk_are_delivered(self) -> None:
        pair = RunningPair(self)
        good = pair.peer.seal(b"\x00\x00\x00\x02hi")
        bad = bytearray(pair.peer.seal(b"\x00\x00\x00\x02ho"))
        bad[3] ^= 1
        pair.session.dataReceived(good + bytes(bad))
        self.assertEqual(self.successResultOf(pair.session.read()), b"hi")
        self.failureResultOf(pair.session.read(), DecipherError)

    def test_oversized_record_refused_before_buffering(self) -> None:
        """A record header over the codec's limit fails at once, nothing is buffered."""
        pair = RunningPair(self, codec=BytesCodec(max_size=1000))
        pair.session.dataReceived(pair.peer.seal((997).to_bytes(4, "big") + b"x"))
        self.failureResultOf(pair.session.read(), DecodingError)
        self.assertEqual(len(pair.session._input), 0)

    def test_record_length_over_uint30(self) -> None:
        pair = RunningPair(self)
        pair.session.dataReceived(pair.peer.seal(b"\xff\xff\xff\xff"))
        error = self.failureResultOf(pair.session.read(), DecodingError).value
        self.assertEqual(error.reason, "Invalid_int")

    def test_short_ciphertext(self) -> None:
        pair = RunningPair(self)
        pair.session.dataReceived(b"\x00\x05abcde")
        self.failureResultOf(pair.session.read())

    def test_handshake_buffer_is_bounded(self) -> None:
        """Bytes nobody asked for during the handshake pause the peer."""
        config = session_config(IDENTITY_A)
        session, transport, _ = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        pending: Deferred[Any] = Deferred()
        self.patch(session.config.effective_gate().__class__, "decide", lambda *a: pending)
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        self.assertEqual(transport.producerState, "producing")
        session.dataReceived(b"\x00" * 200_000)
        self.assertEqual(transport.producerState, "paused")

    def test_gate_failure_refuses(self) -> None:
        def broken(*args: Any) -> Any:
            raise RuntimeError("boom")

        config = session_config(IDENTITY_A, gate=type("G", (), {"decide": staticmethod(broken)})())
        session, transport, _ = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00"))
        self.failureResultOf(session.when_established(), RejectedWithoutNack)
        self.flushLoggedErrors(RuntimeError)

    def test_asynchronous_gate(self) -> None:
        answer: Deferred[Any] = Deferred()
        config = session_config(
            IDENTITY_A, gate=type("G", (), {"decide": staticmethod(lambda s, i: answer)})()
        )
        session, transport, _ = make_session(config, incoming=False)
        peer = RawPeer(IDENTITY_B, incoming=True)
        peer.keys_from(take(transport))
        session.dataReceived(peer.frame + peer.seal(b"\x00\x00") + peer.seal(b"\x00"))
        take(transport)
        self.assertNoResult(session.when_established())
        answer.callback(Accept(NetworkVersion("SANDBOXED_TEZOS", 2, 1)))
        self.successResultOf(session.when_established())

    def test_invalid_chunk_size(self) -> None:
        self.assertRaises(InvalidChunksSize, Limits, binary_chunks_size=18)
        self.assertRaises(InvalidChunksSize, Limits, binary_chunks_size=65536)
        self.assertEqual(Limits(binary_chunks_size=19).chunk_plaintext_size, 1)


class QueueTests(SynchronousTestCase):
    def test_incoming_back_pressure(self) -> None:
        """A peer faster than the reader is paused; the queue stays within its bound."""
        limits = Limits(incoming_message_queue_size=10_000)
        pair = RunningPair(self, limits=limits)
        record = (1000).to_bytes(4, "big") + b"m" * 1000
        pair.session.dataReceived(pair.peer.seal(record * 50))
        self.assertLessEqual(pair.session._incoming.size, 10_000)
        self.assertEqual(pair.transport.producerState, "paused")
        received = 0
        while True:
            message = pair.session.read_now()
            if message is None:
                break
            received += 1
            self.assertLessEqual(pair.session._incoming.size, 10_000)
        self.assertEqual(received, 50)
        self.assertEqual(pair.transport.producerState, "producing")

    def test_outgoing_queue_bound(self) -> None:
        limits = Limits(outgoing_message_queue_size=5_000)
        pair = RunningPair(self, limits=limits)
        pair.flush()  # the socket wants data once, then never drains
        self.assertTrue(pair.session.write_now(b"a" * 10_000))  # handed over at once
        self.assertTrue(pair.session.write_now(b"b" * 3_000))  # queued: the queue was empty
        self.assertFalse(pair.session.write_now(b"c" * 3_000))  # 3000 + 3000 >= 5000
        waiting = pair.session.write(b"d" * 2_500)  # 3000 + 2500 >= 5000: waits
        self.assertNoResult(waiting)
        pair.flush()  # drained: "b" goes out, "d" gets its place
        self.successResultOf(waiting)

    def test_write_sync_fires_when_flushed(self) -> None:
        pair = RunningPair(self)
        sent = pair.session.write_sync(b"payload")
        self.assertNoResult(sent)  # queued
        self.assertEqual(pair.peer.open_all(pair.flush()), [b"\x00\x00\x00\x07payload"])
        self.assertNoResult(sent)  # handed to the transport, not yet to the kernel
        pair.flush()  # the transport reports it has written everything
        self.successResultOf(sent)

    def test_oversized_write(self) -> None:
        pair = RunningPair(self, codec=BytesCodec(max_size=100))
        self.failureResultOf(pair.session.write(b"x" * 97), InvalidMessageSize)
        self.assertRaises(InvalidMessageSize, pair.session.write_now, b"x" * 97)
        self.successResultOf(pair.session.write(b"x" * 96))

    def test_stat(self) -> None:
        pair = RunningPair(self)
        before = pair.session.stat()
        pair.session.write_now(b"12345")
        pair.flush()
        after = pair.session.stat()
        self.assertEqual(after.total_sent - before.total_sent, 2 + 16 + 4 + 5)
        self.assertEqual(after.to_json()["total_sent"], str(after.total_sent))

    def test_close_drops_queued(self) -> None:
        pair = RunningPair(self)
        pair.session.write_now(b"first")  # the transport has not asked for data: queued
        queued = pair.session.write_sync(b"second")
        closing = pair.session.close("bye")
        self.failureResultOf(queued, ConnectionClosed)
        self.assertTrue(pair.transport.disconnecting)
        pair.session.connectionLost(ConnectionClosed())  # type: ignore[arg-type]
        self.successResultOf(closing)
        self.assertEqual(pair.session.close_reason, "bye")

    def test_data_after_close_is_dropped(self) -> None:
        """Messages still arriving while a close drains the output are dropped, quietly."""
        pair = RunningPair(self)
        pair.session.write_now(b"last words")
        pair.session.close("maintenance too many", wait=True)
        pair.session.dataReceived(pair.peer.seal(b"\x00\x00\x00\x04late"))
        self.assertFalse(pair.transport.disconnecting)  # still flushing
        self.assertEqual(pair.peer.open_all(pair.flush()), [b"\x00\x00\x00\x0alast words"])
        pair.flush()  # the transport wrote it all: the close completes
        self.assertTrue(pair.transport.disconnecting)

    def test_reader_closing_mid_read(self) -> None:
        """A reader that closes the session on the first of several records of one read."""
        pair = RunningPair(self)
        got: list[object] = []

        def first(message: object) -> None:
            got.append(message)
            pair.session.close("enough")

        pair.session.read().addCallback(first)
        records = b"".join(
            pair.peer.seal(len(m).to_bytes(4, "big") + m) for m in (b"one", b"two", b"three")
        )
        pair.session.dataReceived(records)
        self.assertEqual(got, [b"one"])
        self.assertTrue(pair.transport.disconnecting)
        self.failureResultOf(pair.session.read(), ConnectionClosed)


class SplitStreamTests(SynchronousTestCase):
    @settings(max_examples=60)
    @given(
        messages=st.lists(st.binary(max_size=3000), min_size=1, max_size=8),
        cuts=st.lists(st.integers(min_value=1, max_value=4000), max_size=20),
        chunk=st.sampled_from([1, 7, 100, 65517]),
    )
    def test_any_split_gives_the_same_messages(
        self, messages: list[bytes], cuts: list[int], chunk: int
    ) -> None:
        """However TCP cuts the peer's bytes, the same messages come out."""
        pair = RunningPair(self)
        stream = b"".join(pair.peer.seal(len(m).to_bytes(4, "big") + m, chunk) for m in messages)
        position = 0
        for cut in cuts:
            pair.session.dataReceived(stream[position : position + cut])
            position += cut
        pair.session.dataReceived(stream[position:])
        received = []
        while (message := pair.session.read_now()) is not None:
            received.append(message)
        self.assertEqual(received, messages)

    def test_handshake_and_messages_in_one_read_or_bytewise(self) -> None:
        """
        The peer's whole handshake and its first messages, in one read or one
        byte per read: each state's step reads what it waits for and leaves
        the rest to the next one.
        """
        for size in (None, 1):
            session, transport, _ = make_session(session_config(IDENTITY_A), incoming=False)
            peer = RawPeer(IDENTITY_B, incoming=True)
            peer.keys_from(take(transport))
            stream = (
                peer.frame
                + peer.seal(b"\x00\x00")
                + peer.seal(encode_ack(Ack()))
                + peer.seal(b"\x00\x00\x00\x02hi" + b"\x00\x00\x00\x01!")
            )
            cut = size or len(stream)
            for position in range(0, len(stream), cut):
                session.dataReceived(stream[position : position + cut])
            self.successResultOf(session.when_established())
            self.assertEqual([session.read_now(), session.read_now()], [b"hi", b"!"])
            self.assertIsNone(session.read_now())


_ = succeed


class ApplicationProducerTests(SynchronousTestCase):
    """A producer registered on a session is paused while its write queue is full."""

    def test_streaming_producer(self) -> None:
        pair = RunningPair(self, limits=Limits(outgoing_message_queue_size=10_000))
        session = pair.session
        events: list[str] = []

        class Producer:
            paused = False

            def pauseProducing(self) -> None:
                self.paused = True
                events.append("pause")

            def resumeProducing(self) -> None:
                self.paused = False
                events.append("resume")
                while not self.paused:
                    self.assertBounded()
                    session.write_now(b"m" * 1000)

            def stopProducing(self) -> None:
                self.paused = True

            def assertBounded(self) -> None:
                assert session._outbox.size < 10_000 + 1004

        producer = Producer()
        session.registerProducer(producer, True)
        producer.resumeProducing()  # the application starts writing
        self.assertTrue(producer.paused)
        self.assertLess(session._outbox.size, 10_000)
        pair.flush()  # the socket takes a batch: room again
        self.assertIn("resume", events[1:])
        self.assertLessEqual(session._outbox.size, 10_000)
        session.unregisterProducer()

    def test_pull_producer(self) -> None:
        pair = RunningPair(self, limits=Limits(outgoing_message_queue_size=5_000))
        session = pair.session
        asked = []

        class Pull:
            def resumeProducing(self) -> None:
                asked.append(1)
                session.write_now(b"p" * 1000)

            def stopProducing(self) -> None:
                pass

        session.registerProducer(Pull(), False)
        self.assertGreater(len(asked), 0)
        self.assertRaises(RuntimeError, session.registerProducer, Pull(), False)
