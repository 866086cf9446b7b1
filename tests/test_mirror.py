"""Tests mirror the package: every module has its own test module at the same path.

``src/dicomweb_archive/a/b.py`` is tested by ``tests/a/test_b.py``; a package's
``__main__.py`` by ``test_main.py``.  Package ``__init__`` files only gather
names (``tests/test_exported_members.py`` checks those).
"""

from __future__ import annotations

from pathlib import Path

import dicomweb_archive

PACKAGE = Path(dicomweb_archive.__file__).parent
TESTS = Path(__file__).parent


def _mirror(module: Path) -> Path:
    relative = module.relative_to(PACKAGE)
    name = "main" if relative.stem == "__main__" else relative.stem
    return TESTS / relative.parent / f"test_{name}.py"


def test_every_module_has_its_test_module() -> None:
    modules = [m for m in sorted(PACKAGE.rglob("*.py")) if m.name != "__init__.py"]
    assert len(modules) > 50
    missing = [
        f"{m.relative_to(PACKAGE)}: no {_mirror(m).relative_to(TESTS.parent)}"
        for m in modules
        if not _mirror(m).is_file()
    ]
    assert missing == []
