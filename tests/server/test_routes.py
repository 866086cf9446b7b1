"""The route table: every row reachable, hot routes first, imports pointing down."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from dicomweb_archive.model.paths import ResourceType, Suffix
from dicomweb_archive.model.patterns import Pattern
from dicomweb_archive.server import frames, metadata, routes
from dicomweb_archive.server.routes import ROUTES

SERVER = Path(routes.__file__).parent


def test_hot_routes_are_tried_first() -> None:
    assert ROUTES[0].pattern == Pattern(ResourceType.FRAMES)
    assert ROUTES[0].service is frames.retrieve_frames
    assert ROUTES[1].pattern == Pattern(ResourceType.SERIES, Suffix.METADATA)
    assert ROUTES[1].service is metadata.retrieve_series_metadata
    # Alternate framesPath names would also match literal segments: they come last.
    assert ROUTES[-1].pattern.alternate


def test_every_path_and_method_has_one_service() -> None:
    rows = [(e.pattern.template, e.method) for e in ROUTES]
    assert len(rows) == len(set(rows))


def test_services_speak_the_standard() -> None:
    # delete_instances: not in PS3.18; the verb of the archives that offer it.
    verbs = ("search_for_", "retrieve_", "store_", "delete_instances")
    for endpoint in ROUTES:
        assert endpoint.service.__name__.startswith(verbs), endpoint.service.__name__


def test_stored_bytes_are_served_on_the_event_loop() -> None:
    on_loop = {e.service.__name__ for e in ROUTES if inspect.iscoroutinefunction(e.service)}
    assert {
        "retrieve_frames",
        "retrieve_series_metadata",
        "retrieve_study_metadata",
        "retrieve_instance_metadata",
        "retrieve_bulkdata",
        "store_instances",
        "retrieve_extension_file",
        "store_extension_file",
        "retrieve_study_document",
    } == on_loop


def _server_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in names if n.startswith("dicomweb_archive.server."))
    return found


def _module(path: Path) -> str:
    relative = path.relative_to(SERVER.parent).with_suffix("")
    return "dicomweb_archive." + ".".join(relative.parts).removesuffix(".__init__")


def test_server_imports_point_down() -> None:
    """The services import the helpers below them, never each other or the table."""
    modules = {_module(p): p for p in SERVER.rglob("*.py")}
    top = {"dicomweb_archive.server.app", "dicomweb_archive.server.routes"}
    services = {
        f"dicomweb_archive.server.{name}"
        for name in (
            "frames",
            "metadata",
            "bulkdata",
            "retrieve",
            "rendered",
            "qido",
            "extensions",
        )
    } | {"dicomweb_archive.server.stow.service"}
    for name, path in modules.items():
        imported = _server_imports(path) & set(modules)
        if name not in top:
            assert not imported & top, f"{name} imports {imported & top}"
        if name in services:
            assert not imported & services, f"{name} imports {imported & services}"
