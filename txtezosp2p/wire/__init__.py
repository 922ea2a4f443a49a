"""
The wire layer: everything that turns values into the bytes Octez puts on the
wire and back, with no I/O and no Twisted.

* :mod:`~txtezosp2p.wire.binary`: the binary subset of Octez's data-encoding;
* :mod:`~txtezosp2p.wire.encoding`: connection messages, metadata, Ack / Nack,
  the P2P envelope and its control messages (wire.md §2-§8);
* :mod:`~txtezosp2p.wire.ids`: peer ids, points, connection ids, base58;
* :mod:`~txtezosp2p.wire.crypto`: proof of work, channel key, nonces, the chunk cipher;
* :mod:`~txtezosp2p.wire.errors`: the typed errors, with Octez's identifiers;
* :mod:`~txtezosp2p.wire.shell_types`, :mod:`~txtezosp2p.wire.shell`: the
  shell's data types and its distributed-DB messages, typed.

Nothing in this package imports Twisted (a test checks it), so codecs can be
used by any Python program.
"""
