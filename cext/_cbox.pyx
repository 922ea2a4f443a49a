# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""
Hot paths of the session layer, in C: sealing and opening runs of encrypted
chunks, and proof-of-work checking and mining.

The pure-Python twin is ``txtezosp2p/_cbox_py.py``; both must return the same
bytes for the same inputs.  libsodium is reached through function addresses
that ``txtezosp2p._backend`` reads from PyNaCl and hands to :func:`bind`,
followed by a known-answer self-test.

Chunk layout (wire.md section 4): ``uint16 BE (16 + n) || MAC(16) || ct(n)``,
which is libsodium's "easy" combined form behind a length header.  Nonces
are 24-byte big-endian counters, used then incremented once per chunk
(wire.md section 3.3).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from libc.string cimport memcpy

from _sodium cimport box_easy_afternm_t, box_open_easy_afternm_t, blake2b_salt_personal_t

cdef enum:
    MACBYTES = 16
    HEADER = 2
    NONCEBYTES = 24
    KEYBYTES = 32
    MAX_CHUNK_PLAINTEXT = 65517
    GIL_RELEASE_THRESHOLD = 4096

cdef box_easy_afternm_t _seal = NULL
cdef box_open_easy_afternm_t _open = NULL
cdef blake2b_salt_personal_t _blake2b = NULL

#: Result codes of :func:`open_chunks`.
OPEN_OK = 0
OPEN_DECIPHER_ERROR = 1
OPEN_INVALID_SIZE = 2

BACKEND = "cython"


def bind(size_t seal_addr, size_t open_addr, size_t blake2b_addr):
    """Install the libsodium function addresses (done once by ``_backend``)."""
    global _seal, _open, _blake2b
    _seal = <box_easy_afternm_t> seal_addr
    _open = <box_open_easy_afternm_t> open_addr
    _blake2b = <blake2b_salt_personal_t> blake2b_addr


def is_bound():
    return _seal != NULL and _open != NULL and _blake2b != NULL


cdef inline void _increment(unsigned char *nonce) noexcept nogil:
    # big-endian add-one with carry, wrapping at 2**192
    cdef int i = NONCEBYTES - 1
    while i >= 0:
        nonce[i] = <unsigned char>(nonce[i] + 1)
        if nonce[i] != 0:
            return
        i -= 1


cdef int _seal_loop(unsigned char *o, const unsigned char *src, Py_ssize_t total,
                    Py_ssize_t chunk_size, unsigned char *n,
                    const unsigned char *k) noexcept nogil:
    cdef Py_ssize_t pos = 0, opos = 0, piece
    cdef int rc = 0
    while True:
        piece = total - pos
        if piece > chunk_size:
            piece = chunk_size
        o[opos] = <unsigned char>((piece + MACBYTES) >> 8)
        o[opos + 1] = <unsigned char>((piece + MACBYTES) & 0xFF)
        rc |= _seal(o + opos + HEADER, src + pos, <unsigned long long> piece, n, k)
        _increment(n)
        opos += HEADER + MACBYTES + piece
        pos += piece
        if pos >= total:
            return rc


cdef int _open_loop(unsigned char *o, const unsigned char *src, Py_ssize_t start,
                    Py_ssize_t frames, unsigned char *n, const unsigned char *k,
                    Py_ssize_t *pos_out, Py_ssize_t *opos_out,
                    Py_ssize_t *opened_out) noexcept nogil:
    cdef Py_ssize_t pos = start, opos = 0, opened = 0, body
    cdef int rc = 0
    while opened < frames:
        body = (<Py_ssize_t> src[pos] << 8) | src[pos + 1]
        rc = _open(o + opos, src + pos + HEADER, <unsigned long long> body, n, k)
        _increment(n)
        if rc != 0:
            break
        opos += body - MACBYTES
        pos += HEADER + body
        opened += 1
    pos_out[0] = pos
    opos_out[0] = opos
    opened_out[0] = opened
    return rc


cdef inline unsigned char *_nonce_ptr(bytearray nonce) except NULL:
    if PyByteArray_GET_SIZE(nonce) != NONCEBYTES:
        raise ValueError("a nonce is 24 bytes")
    return <unsigned char *> PyByteArray_AS_STRING(nonce)


cdef inline void _check_key(const unsigned char[::1] key) except *:
    if key.shape[0] != KEYBYTES:
        raise ValueError("a channel key is 32 bytes")
    if _seal == NULL:
        raise RuntimeError("txtezosp2p._cbox is not bound to libsodium")


def increment_nonce(bytearray nonce):
    """Add one to a 24-byte big-endian nonce, in place."""
    _increment(_nonce_ptr(nonce))


def seal_chunks(const unsigned char[::1] key, bytearray nonce,
                const unsigned char[::1] data, Py_ssize_t chunk_size):
    """
    Cut ``data`` into pieces of ``chunk_size`` plaintext bytes (the last one
    shorter), seal each with the current nonce then increment it, and return
    the concatenated wire frames.  Empty ``data`` gives one empty chunk.
    """
    _check_key(key)
    if chunk_size < 1 or chunk_size > MAX_CHUNK_PLAINTEXT:
        raise ValueError("chunk size out of range")
    cdef unsigned char *n = _nonce_ptr(nonce)
    cdef Py_ssize_t total = data.shape[0]
    cdef Py_ssize_t count = (total + chunk_size - 1) // chunk_size if total else 1
    cdef Py_ssize_t out_size = total + count * (HEADER + MACBYTES)
    out = PyBytes_FromStringAndSize(NULL, out_size)
    cdef unsigned char *o = <unsigned char *> PyBytes_AS_STRING(out)
    cdef const unsigned char *src = &data[0] if total else <const unsigned char *> o
    cdef const unsigned char *k = &key[0]
    cdef int rc
    if total >= GIL_RELEASE_THRESHOLD:
        with nogil:
            rc = _seal_loop(o, src, total, chunk_size, n, k)
    else:
        rc = _seal_loop(o, src, total, chunk_size, n, k)
    if rc != 0:
        raise RuntimeError("crypto_box_easy_afternm failed")
    return out


cdef int _seal_batch_loop(unsigned char *o, const unsigned char **ptrs,
                          const Py_ssize_t *lens, const unsigned char *framed,
                          Py_ssize_t count, Py_ssize_t chunk_size,
                          unsigned char *n, const unsigned char *k) noexcept nogil:
    # Each item is a plaintext stream: a 4-byte big-endian length then the
    # item when framed, the item alone otherwise; it starts a new chunk.  The
    # plaintext of each chunk is copied into place and encrypted in place
    # (m == c + MACBYTES, which libsodium allows).
    cdef Py_ssize_t item, pos, total, piece, opos = 0, head, copied
    cdef unsigned char header[4]
    cdef unsigned char *plain
    cdef int rc = 0
    for item in range(count):
        total = lens[item] + (4 if framed[item] else 0)
        if framed[item]:
            header[0] = <unsigned char>((lens[item] >> 24) & 0xFF)
            header[1] = <unsigned char>((lens[item] >> 16) & 0xFF)
            header[2] = <unsigned char>((lens[item] >> 8) & 0xFF)
            header[3] = <unsigned char>(lens[item] & 0xFF)
        pos = 0
        while True:
            piece = total - pos
            if piece > chunk_size:
                piece = chunk_size
            o[opos] = <unsigned char>((piece + MACBYTES) >> 8)
            o[opos + 1] = <unsigned char>((piece + MACBYTES) & 0xFF)
            plain = o + opos + HEADER + MACBYTES
            copied = 0
            if framed[item] and pos < 4:
                head = 4 - pos
                if head > piece:
                    head = piece
                memcpy(plain, header + pos, head)
                copied = head
            if piece > copied:
                memcpy(plain + copied, ptrs[item] + (pos + copied - (4 if framed[item] else 0)),
                       piece - copied)
            rc |= _seal(o + opos + HEADER, plain, <unsigned long long> piece, n, k)
            _increment(n)
            opos += HEADER + MACBYTES + piece
            pos += piece
            if pos >= total:
                break
    return rc


def seal_batch(const unsigned char[::1] key, bytearray nonce, list items,
               const unsigned char[::1] framed, Py_ssize_t chunk_size):
    """
    Seal several byte strings in one call into one buffer of wire frames.
    Item ``i`` is preceded by its 4-byte big-endian length when
    ``framed[i]`` is non-zero (a message record), and always starts a new
    chunk.  Equals concatenating ``seal_chunks`` of each record.
    """
    _check_key(key)
    if chunk_size < 1 or chunk_size > MAX_CHUNK_PLAINTEXT:
        raise ValueError("chunk size out of range")
    cdef Py_ssize_t count = len(items)
    if framed.shape[0] != count:
        raise ValueError("one framing flag per item")
    cdef unsigned char *n = _nonce_ptr(nonce)
    cdef const unsigned char **ptrs = <const unsigned char **> PyMem_Malloc(
        (count + 1) * sizeof(const unsigned char *))
    cdef Py_ssize_t *lens = <Py_ssize_t *> PyMem_Malloc((count + 1) * sizeof(Py_ssize_t))
    if ptrs == NULL or lens == NULL:
        PyMem_Free(ptrs)
        PyMem_Free(lens)
        raise MemoryError()
    cdef Py_ssize_t i, total, chunks, out_size = 0
    cdef bytes item
    cdef int rc = 0
    cdef unsigned char *o = NULL
    cdef const unsigned char *flags = &framed[0] if count else NULL
    try:
        for i in range(count):
            item = <bytes?> items[i]
            ptrs[i] = <const unsigned char *> PyBytes_AS_STRING(item)
            lens[i] = PyBytes_GET_SIZE(item)
            total = lens[i] + (4 if framed[i] else 0)
            if framed[i] and lens[i] > 0x3FFFFFFF:
                raise ValueError("record too long for a uint30 length")
            chunks = (total + chunk_size - 1) // chunk_size if total else 1
            out_size += total + chunks * (HEADER + MACBYTES)
        out = PyBytes_FromStringAndSize(NULL, out_size)
        o = <unsigned char *> PyBytes_AS_STRING(out)
        if out_size >= GIL_RELEASE_THRESHOLD:
            with nogil:
                rc = _seal_batch_loop(o, ptrs, lens, flags, count, chunk_size, n, &key[0])
        else:
            rc = _seal_batch_loop(o, ptrs, lens, flags, count, chunk_size, n, &key[0])
    finally:
        PyMem_Free(ptrs)
        PyMem_Free(lens)
    if rc != 0:
        raise RuntimeError("crypto_box_easy_afternm failed")
    return out


def open_chunks(const unsigned char[::1] key, bytearray nonce,
                const unsigned char[::1] buf, Py_ssize_t offset,
                Py_ssize_t max_frames):
    """
    Open the complete frames found in ``buf[offset:]``, at most
    ``max_frames`` of them (no limit if negative), incrementing the nonce
    once per frame.

    Returns ``(plaintext, new_offset, frames, status)``: the concatenated
    plaintext of the frames that opened, the offset just after them, their
    count, and ``OPEN_OK``, ``OPEN_DECIPHER_ERROR`` (the next frame failed
    to authenticate; its nonce was consumed) or ``OPEN_INVALID_SIZE`` (the
    next frame declares fewer than 16 bytes).
    """
    _check_key(key)
    cdef unsigned char *n = _nonce_ptr(nonce)
    cdef Py_ssize_t size = buf.shape[0]
    if offset < 0 or offset > size:
        raise ValueError("offset out of range")
    # first pass: how many complete frames, how much plaintext
    cdef Py_ssize_t pos = offset, frames = 0, plain = 0, body
    cdef int status = OPEN_OK
    while (max_frames < 0 or frames < max_frames) and size - pos >= HEADER:
        body = (<Py_ssize_t> buf[pos] << 8) | buf[pos + 1]
        if body < MACBYTES:
            status = OPEN_INVALID_SIZE
            break
        if size - pos - HEADER < body:
            break
        plain += body - MACBYTES
        pos += HEADER + body
        frames += 1
    out = PyBytes_FromStringAndSize(NULL, plain)
    if frames == 0:
        return out, offset, 0, status
    cdef unsigned char *o = <unsigned char *> PyBytes_AS_STRING(out)
    cdef const unsigned char *src = &buf[0]
    cdef const unsigned char *k = &key[0]
    cdef Py_ssize_t opened = 0, opos = 0
    cdef int rc
    if plain >= GIL_RELEASE_THRESHOLD:
        with nogil:
            rc = _open_loop(o, src, offset, frames, n, k, &pos, &opos, &opened)
    else:
        rc = _open_loop(o, src, offset, frames, n, k, &pos, &opos, &opened)
    if rc != 0:
        return out[:opos], pos, opened, OPEN_DECIPHER_ERROR
    return out, pos, opened, status


cdef inline bint _le_at_most(const unsigned char *h, const unsigned char *t) noexcept nogil:
    # compare two 32-byte little-endian integers: h <= t
    cdef int i = 31
    while i >= 0:
        if h[i] != t[i]:
            return h[i] < t[i]
        i -= 1
    return True


def check_pow(const unsigned char[::1] public_key, const unsigned char[::1] stamp,
              const unsigned char[::1] target_le):
    """``Blake2b-256(pk || stamp)`` read little-endian is at most the target."""
    if public_key.shape[0] != 32 or stamp.shape[0] != NONCEBYTES or target_le.shape[0] != 32:
        raise ValueError("bad proof-of-work argument sizes")
    if _blake2b == NULL:
        raise RuntimeError("txtezosp2p._cbox is not bound to libsodium")
    cdef unsigned char data[56]
    cdef unsigned char h[32]
    memcpy(data, &public_key[0], 32)
    memcpy(data + 32, &stamp[0], NONCEBYTES)
    _blake2b(h, 32, data, 56, NULL, 0, NULL, NULL)
    return _le_at_most(h, &target_le[0])


def mine(const unsigned char[::1] public_key, bytearray stamp,
         const unsigned char[::1] target_le, unsigned long long attempts):
    """
    Try ``attempts`` stamps starting at ``stamp`` (incremented big-endian
    after each failure), without the GIL.  On success ``stamp`` holds the
    winning value.  Returns the number of stamps tried, which is at most
    ``attempts`` and is smaller only when a stamp was found.
    """
    if public_key.shape[0] != 32 or target_le.shape[0] != 32:
        raise ValueError("bad proof-of-work argument sizes")
    if _blake2b == NULL:
        raise RuntimeError("txtezosp2p._cbox is not bound to libsodium")
    cdef unsigned char *s = _nonce_ptr(stamp)
    cdef unsigned char data[56]
    cdef unsigned char h[32]
    cdef const unsigned char *t = &target_le[0]
    cdef unsigned long long tried = 0
    cdef bint found = False
    memcpy(data, &public_key[0], 32)
    memcpy(data + 32, s, NONCEBYTES)
    with nogil:
        while tried < attempts:
            _blake2b(h, 32, data, 56, NULL, 0, NULL, NULL)
            tried += 1
            if _le_at_most(h, t):
                found = True
                break
            _increment(data + 32)
    memcpy(s, data + 32, NONCEBYTES)
    if found:
        return tried
    return attempts


cdef class RecordBuffer:
    """
    A ``bytes`` object of a known size written once, in order, then handed
    out: the body of a message that arrives over many reads is copied into
    its final object as it arrives, and never copied again (a bytes builder,
    like CPython's own).  The object cannot be reached before :meth:`take`,
    so it is never seen half-written.  Its pages are only touched as bytes
    arrive, so an announced size costs no memory before the bytes come.
    """

    cdef object _bytes
    cdef Py_ssize_t _size
    cdef Py_ssize_t _filled

    def __cinit__(self, Py_ssize_t size):
        if size < 0:
            raise ValueError("negative size")
        self._bytes = PyBytes_FromStringAndSize(NULL, size)
        self._size = size
        self._filled = 0

    @property
    def filled(self):
        return self._filled

    @property
    def missing(self):
        return self._size - self._filled

    def write(self, const unsigned char[::1] data):
        """Append up to :attr:`missing` bytes of ``data``; returns how many were taken."""
        if self._bytes is None:
            raise ValueError("the buffer was taken")
        cdef Py_ssize_t n = data.shape[0]
        if n > self._size - self._filled:
            n = self._size - self._filled
        if n > 0:
            memcpy(PyBytes_AS_STRING(self._bytes) + self._filled, &data[0], n)
            self._filled += n
        return n

    def take(self):
        """The complete ``bytes``; the buffer is empty afterwards."""
        if self._bytes is None:
            raise ValueError("the buffer was taken")
        if self._filled != self._size:
            raise ValueError("the buffer is not complete")
        result = self._bytes
        self._bytes = None
        return result
