# -*- test-case-name: tests.test_backend -*-
"""
Choice of implementation: the environment switches, checked in fresh
interpreters so that the import-time choice is exercised for real.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

# Makes ``import txtezosp2p._cbox`` fail, as when the extension was not built.
HIDE_EXTENSION = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "txtezosp2p._cbox":
            raise ImportError("hidden for the test")
        return None
sys.meta_path.insert(0, Hide())
"""


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TXTEZOSP2P_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


class BackendChoiceTests(SynchronousTestCase):
    def test_no_extensions(self) -> None:
        result = python(
            "from txtezosp2p import _backend; print(_backend.describe()['cbox'])",
            TXTEZOSP2P_NO_EXTENSIONS="1",
        )
        self.assertEqual(result.stdout.strip(), "python", result.stderr)

    def test_missing_extension_falls_back(self) -> None:
        result = python(
            HIDE_EXTENSION + "from txtezosp2p import _backend; print(_backend.describe()['cbox'])"
        )
        self.assertEqual(result.stdout.strip(), "python", result.stderr)

    def test_missing_extension_required(self) -> None:
        result = python(
            HIDE_EXTENSION + "import txtezosp2p.wire.crypto", TXTEZOSP2P_REQUIRE_EXTENSIONS="1"
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImportError", result.stderr)
        self.assertIn("required", result.stderr)

    def test_compiled_when_built(self) -> None:
        from txtezosp2p import _backend

        if _backend.compiled_cbox() is None:
            raise self.skipTest("extension not built")
        result = python("from txtezosp2p import _backend; print(_backend.describe()['cbox'])")
        self.assertEqual(result.stdout.strip(), "cython", result.stderr)
