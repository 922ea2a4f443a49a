"""
Build script: compiles the Cython sources in ``cext/`` into ``txtezosp2p``.

The extensions call the libsodium that PyNaCl bundles through function
addresses handed over at import time, so no libsodium headers or library
are needed to build (see ``cext/README.md``).
"""

import os

from setuptools import Extension, setup

EXTENSIONS = [
    ("txtezosp2p._cbox", "cext/_cbox.pyx"),
    ("txtezosp2p._quota", "cext/_quota.pyx"),
]


def extensions() -> list[Extension]:
    if os.environ.get("TXTEZOSP2P_NO_EXTENSIONS") == "1":
        return []
    from Cython.Build import cythonize

    modules = [Extension(name, [source], extra_compile_args=["-O3"]) for name, source in EXTENSIONS]
    return cythonize(
        modules,
        compiler_directives={"language_level": "3"},
        quiet=True,
    )


setup(ext_modules=extensions())
