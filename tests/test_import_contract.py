"""The import contract: every package imports only from its own layer or below.

::

    version, types, tags, errors,      the shared vocabulary
    uids, media, numerals, batch,      (batch: runners and outcomes of a run;
    pool, cluster, collector           pool: tasks on this machine's worker processes;
                                       cluster: the same tasks on a Dask cluster;
                                       collector: full garbage collections at quiet moments)
    ← model                            DICOMweb resources as data, no IO
    ← p10, deidentify                  parse P10 files; PS3.15 de-identification of datasets
    ← codec                            decode and encode pixel data
    ← store                            where bytes live, the catalog
    ← convert, transcode, export       P10 → archive, archive → archive, archive → P10
    ← rewrite                          archive → archive or P10 through convert's transforms
      viewer                           the OHIF viewer's build (npm) and configuration
    ← server, dimse                    DICOMweb over HTTP, DIMSE over TCP (``dwa listen``)
    ← cli                              the ``dwa`` command

Imports inside functions count too.  The package's ``__init__`` (the public API)
and the demo sit outside the layers: nothing in the layers imports the demo.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dicomweb_archive

PACKAGE = Path(dicomweb_archive.__file__).parent
NAME = "dicomweb_archive"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "version",
            "types",
            "tags",
            "errors",
            "uids",
            "media",
            "numerals",
            "batch",
            "pool",
            "cluster",
            "collector",
        }
    ),
    frozenset({"model"}),
    frozenset({"p10", "deidentify"}),
    frozenset({"codec"}),
    frozenset({"store"}),
    frozenset({"convert", "transcode", "export", "viewer"}),
    frozenset({"rewrite"}),
    frozenset({"server", "dimse"}),
    frozenset({"cli"}),
)
#: Outside the layers: may import anything, imported by nothing in a layer.
OUTSIDE = frozenset({"__init__", "__main__", "demo"})
#: Imports that break the contract while the code moves, each with what removes it.
#: A test fails once one is gone, so this list only shrinks.
KNOWN: dict[tuple[str, str], str] = {}


def _layer(top: str) -> int | None:
    for number, members in enumerate(LAYERS):
        if top in members:
            return number
    return None


def _top(module: str) -> str:
    """``dicomweb_archive.store.catalog`` → ``store``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    here = ".".join(relative.parts)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: -node.level]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == NAME:  # ``from dicomweb_archive import tags``
                found += [(node.lineno, f"{NAME}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, name) for line, name in found if name.split(".")[0] == NAME]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_name_has_a_place() -> None:
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()}
    unplaced = {t for t in tops if _layer(t) is None and t not in OUTSIDE}
    assert not unplaced, f"modules outside the contract: {sorted(unplaced)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    source_top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if source_top in OUTSIDE:
        return
    own = _layer(source_top)
    assert own is not None
    wrong = []
    for line, name in _imports(path):
        if (str(path.relative_to(PACKAGE)), name) in KNOWN:
            continue
        target = _top(name)
        if target in OUTSIDE:
            wrong.append(f"line {line}: {name} (outside the layers)")
            continue
        layer = _layer(target)
        if layer is None or layer > own or (layer == own and target != source_top and own):
            wrong.append(f"line {line}: {name}")
    assert not wrong, f"{path.relative_to(PACKAGE)} imports upward or sideways: {wrong}"


def test_known_exceptions_still_exist() -> None:
    gone = [
        f"{module} no longer imports {name}: remove it from KNOWN"
        for module, name in sorted(KNOWN)
        if name not in {imported for _, imported in _imports(PACKAGE / module)}
    ]
    assert not gone
