# -*- test-case-name: tests.test_layers -*-
"""
The package's layers (docs/architecture.md): ``txtezosp2p.wire`` imports
nothing from Twisted nor from outside it but the compiled kernels, every
layer imports only from the layers below it (``wire`` < core <
``simulation`` < ``node``), every module imports, and the old module paths
still work with a warning.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import warnings
from fnmatch import fnmatch
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import txtezosp2p

PACKAGE = Path(txtezosp2p.__file__).parent


def _imports(path: Path, package: str) -> set[str]:
    """Absolute names of the modules ``path`` imports (module ``package``.x)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    parts = package.split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


class LayerTests(SynchronousTestCase):
    def test_wire_without_twisted(self) -> None:
        """Importing every module of the wire layer loads no Twisted module."""
        wire = sorted(name for name in _modules() if name.startswith("txtezosp2p.wire"))
        self.assertIn("txtezosp2p.wire.encoding", wire)
        code = (
            "import sys\n"
            + "".join(f"import {name}\n" for name in wire)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'twisted'))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        self.assertEqual(out.strip(), "[]")

    def test_library_does_not_import_node(self) -> None:
        """Nothing outside ``txtezosp2p.node`` imports it (the operator layer is on top)."""
        offenders = []
        for name, path in _modules().items():
            if name.startswith("txtezosp2p.node"):
                continue
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            for imported in _imports(path, package):
                if imported == "txtezosp2p.node" or imported.startswith("txtezosp2p.node."):
                    offenders.append(f"{name} imports {imported}")
        self.assertEqual(offenders, [])

    def test_wire_imports_only_wire(self) -> None:
        """The wire layer depends on nothing of ours above it (at run time)."""
        allowed = ("txtezosp2p.wire", "txtezosp2p._backend")
        offenders = []
        for name, path in _modules().items():
            if not name.startswith("txtezosp2p.wire"):
                continue
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            tree = ast.parse(path.read_text())
            type_only = {
                id(inner)
                for node in ast.walk(tree)
                if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
                for inner in ast.walk(node)
            }
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or id(node) in type_only or not node.level:
                    continue
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                parent = ".".join(base + ([node.module] if node.module else []))
                names = [parent] if node.module else [f"{parent}.{a.name}" for a in node.names]
                for imported in names:
                    if imported.startswith("txtezosp2p") and not imported.startswith(allowed):
                        offenders.append(f"{name} imports {imported}")
        self.assertEqual(offenders, [])

    def test_every_package_is_installed(self) -> None:
        """pyproject.toml's package patterns find every package, or a wheel would miss it."""
        text = (PACKAGE.parent / "pyproject.toml").read_text()
        section = text.split("[tool.setuptools.packages.find]\n", 1)[1].split("\n[", 1)[0]
        include = re.findall(r'"([\w.*]+)"', section.split("include", 1)[1].split("]", 1)[0])
        on_disk = {
            ".".join(path.parent.relative_to(PACKAGE.parent).parts)
            for path in PACKAGE.rglob("__init__.py")
        }
        self.assertIn("txtezosp2p.node.admin", on_disk)
        missed = {name for name in on_disk if not any(fnmatch(name, p) for p in include)}
        self.assertEqual(missed, set())
        self.assertIn("twisted.plugins", include)

    def test_old_paths(self) -> None:
        """``txtezosp2p.encoding`` and friends still import, with a DeprecationWarning."""
        for old in ("encoding", "ids", "crypto", "errors"):
            sys.modules.pop(f"txtezosp2p.{old}", None)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                module = __import__(f"txtezosp2p.{old}", fromlist=["_"])
            self.assertIs(module, sys.modules[f"txtezosp2p.wire.{old}"])
            self.assertTrue(any(issubclass(w.category, DeprecationWarning) for w in caught), old)


#: The layers, lowest first: a module imports only from its own layer and
#: those below it, at run time and for types alike (docs/architecture.md).
LAYERS = ("kernels", "wire", "core", "simulation", "node")

#: The compiled kernels and their pure-Python twins: the build puts the
#: extension modules at the package's top, so their loader lives there too.
KERNELS = (
    "txtezosp2p",
    "txtezosp2p._backend",
    "txtezosp2p._cbox_py",
    "txtezosp2p._quota_py",
    "txtezosp2p._version",
)


def _layer(module: str) -> str:
    if module in KERNELS:
        return "kernels"
    for layer in ("wire", "simulation", "node"):
        if module == f"txtezosp2p.{layer}" or module.startswith(f"txtezosp2p.{layer}."):
            return layer
    return "core"


def _imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """Our modules that ``path`` imports anywhere (top level, functions, ``TYPE_CHECKING``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            candidates = [f"{parent}.{alias.name}" for alias in node.names]
            if node.module:
                candidates.append(parent)
        else:
            continue
        for candidate in candidates:
            if not candidate.startswith("txtezosp2p"):
                continue
            # the longest of our modules the name starts with
            module = candidate
            while module not in modules:
                module = module.rpartition(".")[0]
            found.add(module)
    return found


class LayerOrderTests(SynchronousTestCase):
    def test_every_module_imports(self) -> None:
        """Every module of the package imports on its own."""
        names = sorted(_modules())
        self.assertIn("txtezosp2p.node.admin.service", names)
        for name in names:
            self.assertIsNotNone(importlib.import_module(name), name)

    def test_layers_point_down(self) -> None:
        """
        ``wire`` < core < ``simulation`` < ``node``: no module imports a
        module of a layer above its own, so there is no cycle between layers.
        """
        modules = _modules()
        known = set(modules)
        offenders = []
        for name, path in sorted(modules.items()):
            rank = LAYERS.index(_layer(name))
            for imported in sorted(_imported_modules(path, name, known)):
                if LAYERS.index(_layer(imported)) > rank:
                    offenders.append(f"{name} ({_layer(name)}) imports {imported}")
        self.assertEqual(offenders, [])

    def test_layer_names(self) -> None:
        self.assertEqual(_layer("txtezosp2p.wire.framing"), "wire")
        self.assertEqual(_layer("txtezosp2p.session"), "core")
        self.assertEqual(_layer("txtezosp2p.admission"), "core")
        self.assertEqual(_layer("txtezosp2p.simulation.nodes"), "simulation")
        self.assertEqual(_layer("txtezosp2p.node.admin.service"), "node")
        self.assertEqual(_layer("txtezosp2p._backend"), "kernels")
        self.assertEqual(_layer("txtezosp2p.wirefoo"), "core")

    def test_wire_names_no_twisted(self) -> None:
        """Not even for types: the wire layer names no Twisted module."""
        offenders = []
        for name, path in _modules().items():
            if _layer(name) != "wire":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                else:
                    continue
                offenders += [f"{name} imports {n}" for n in names if n.split(".")[0] == "twisted"]
        self.assertEqual(offenders, [])


class ArchitectureDocTests(SynchronousTestCase):
    """docs/architecture.md stays true to the tree."""

    def test_named_paths_exist(self) -> None:
        """Every ``txtezosp2p/...py`` path the docs name is a file of the package."""
        root = PACKAGE.parent
        named: dict[str, str] = {}
        for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
            for path in re.findall(r"txtezosp2p/[\w/]*\.py", doc.read_text()):
                named.setdefault(path, doc.name)
        self.assertIn("txtezosp2p/pool_state.py", named)
        missing = sorted(
            f"{doc}: {path}" for path, doc in named.items() if not (root / path).is_file()
        )
        self.assertEqual(missing, [])

    def test_module_map_is_complete(self) -> None:
        """The module map names every module of the package (packages' ``__init__`` aside)."""
        text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
        unnamed = sorted(
            str(path.relative_to(PACKAGE.parent))
            for path in PACKAGE.rglob("*.py")
            if path.name != "__init__.py"
            and str(path.relative_to(PACKAGE.parent)) not in text
            and f"`{path.name}`" not in text  # a row naming sibling modules by file name
        )
        self.assertEqual(unnamed, [])
