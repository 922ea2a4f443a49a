# cython: language_level=3
#
# Prototypes of the libsodium functions we call, as function-pointer types.
# They match PyNaCl's cffi declarations (``src/bindings/crypto_box.h`` and
# ``crypto_generichash.h``).  The addresses are taken at import time from
# PyNaCl's own bundled libsodium (``nacl._sodium``), so no libsodium header
# or library is needed to build.

ctypedef int (*box_easy_afternm_t)(
    unsigned char *c, const unsigned char *m, unsigned long long mlen,
    const unsigned char *n, const unsigned char *k) noexcept nogil

ctypedef int (*box_open_easy_afternm_t)(
    unsigned char *m, const unsigned char *c, unsigned long long clen,
    const unsigned char *n, const unsigned char *k) noexcept nogil

ctypedef int (*blake2b_salt_personal_t)(
    unsigned char *out, size_t outlen,
    const unsigned char *inp, unsigned long long inlen,
    const unsigned char *key, size_t keylen,
    const unsigned char *salt, const unsigned char *personal) noexcept nogil
