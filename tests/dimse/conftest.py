from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE

from dicomweb_archive.dimse.config import ListenConfig
from dicomweb_archive.dimse.provider import Listener

Client = Callable[..., Any]


@pytest.fixture
def start_listener(tmp_path: Path) -> Iterator[Callable[..., Listener]]:
    """Start in-process listeners (port 0: a free one) over ``tmp_path/archive``."""
    started: list[Listener] = []

    def start(archive: Path | None = None, **config: Any) -> Listener:
        listener = Listener(str(archive or tmp_path / "archive"), ListenConfig(port=0, **config))
        started.append(listener.start())
        return listener

    yield start
    for listener in started:
        listener.stop()


def associate(listener: Listener, *contexts: Any, ae_title: str = "CLIENT", **kwargs: Any) -> Any:
    """A pynetdicom association to ``listener`` proposing ``contexts``
    (abstract syntax, or (abstract syntax, transfer syntaxes))."""
    ae = AE(ae_title=ae_title)
    for context in contexts:
        if isinstance(context, tuple):
            ae.add_requested_context(*context)
        else:
            ae.add_requested_context(context)
    return ae.associate("127.0.0.1", listener.port, ae_title=listener.config.ae_title, **kwargs)
