/*
 * Bare C baselines for bench/: the proof-of-work mining loop written
 * plainly in C, calling libsodium's Blake2b through the same function
 * pointer the Cython module uses.  Compiled at benchmark time with gcc and
 * loaded with ctypes; never part of the package.
 */
#include <stddef.h>
#include <string.h>

typedef int (*blake2b_fn)(unsigned char *out, size_t outlen,
                          const unsigned char *in, unsigned long long inlen,
                          const unsigned char *key, size_t keylen,
                          const unsigned char *salt, const unsigned char *personal);

/* Try `attempts` stamps for `pk`; returns how many were tried (less than
 * `attempts` when one reached `target_le`, a 32-byte little-endian bound). */
unsigned long long mine(void *hash_fn, const unsigned char *pk, unsigned char *stamp,
                        const unsigned char *target_le, unsigned long long attempts)
{
    blake2b_fn blake2b = (blake2b_fn) hash_fn;
    unsigned char data[56], h[32];
    unsigned long long tried = 0;
    memcpy(data, pk, 32);
    memcpy(data + 32, stamp, 24);
    while (tried < attempts) {
        int i, below = 1;
        blake2b(h, 32, data, 56, NULL, 0, NULL, NULL);
        tried++;
        for (i = 31; i >= 0; i--) {
            if (h[i] != target_le[i]) { below = h[i] < target_le[i]; break; }
        }
        if (below) break;
        for (i = 55; i >= 32; i--) { if (++data[i] != 0) break; }
    }
    memcpy(stamp, data + 32, 24);
    return tried;
}
