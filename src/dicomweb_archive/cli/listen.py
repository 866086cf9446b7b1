"""``dwa listen``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

import click

from dicomweb_archive.cli.options import ArchiveLocation, byte_size
from dicomweb_archive.dimse.config import (
    MAX_ASSOCIATIONS,
    MAX_PDU,
    NETWORK_TIMEOUT,
    TIMEOUT,
    ListenConfig,
    PeersFile,
    allow_list,
    check_ae_title,
    read_peers,
)


@click.command()
@click.argument("archive", type=ArchiveLocation())
@click.option("--ae-title", default="DWA", show_default=True, help="Our AE title.")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 for every address.")
@click.option("--port", default=11112, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--peers",
    type=click.Path(dir_okay=False, exists=True),
    help="A TOML file: the Move Destinations ([peers.AE] host, port) and the allow-list "
    "(allow = [...]); see the README.",
)
@click.option(
    "--allow-ae",
    "allow_ae",
    multiple=True,
    metavar="TITLE",
    help="A calling AE title that may associate (repeat for several; with the peers "
    "file's allow).  None given: any.",
)
@click.option(
    "--max-associations",
    default=MAX_ASSOCIATIONS,
    show_default=True,
    type=click.IntRange(1, None),
    help="Associations served at once; one more is rejected.",
)
@click.option(
    "--timeout",
    default=TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds to wait for the peer's next message before aborting.",
)
@click.option(
    "--network-timeout",
    default=NETWORK_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds an idle association stays open.",
)
@click.option(
    "--max-pdu",
    default=MAX_PDU,
    show_default=True,
    type=click.IntRange(0, None),
    help="Largest PDU received, in bytes (0: no limit).",
)
@click.option(
    "--max-dataset-size",
    default="0",
    callback=byte_size,
    metavar="SIZE",
    show_default=True,
    help="Largest C-STORE data set kept (e.g. 4G); a larger one is read to its end and "
    "refused with 0xA700.  0: no limit.",
)
def listen(
    archive: str,
    ae_title: str,
    host: str,
    port: int,
    peers: str | None,
    allow_ae: tuple[str, ...],
    max_dataset_size: int,
    **limits: Any,
) -> None:
    """Serve ARCHIVE over DIMSE: C-ECHO, C-STORE, C-FIND, C-GET and C-MOVE.

    An empty or new folder becomes an empty archive.  `dwa serve` may serve the
    same archive at the same time: each sees what the other stores.  Each
    C-STORE data set is received into a file in ARCHIVE/.dwa/tmp (an object
    store's local work area) and stored from it: memory stays bounded however
    large the instance.
    """
    try:
        from dicomweb_archive.dimse.provider import Listener
    except ImportError as exc:
        click.echo(
            f"error: dwa listen needs the dimse extra ({exc.name} is missing): "
            "pip install 'dicomweb-archive[dimse]'",
            err=True,
        )
        sys.exit(1)
    known = read_peers(peers) if peers else PeersFile({}, frozenset())
    config = ListenConfig(
        ae_title=check_ae_title(ae_title),
        host=host,
        port=port,
        peers=known.peers,
        allowed_calling=allow_list(allow_ae, known.allow),
        max_dataset_size=max_dataset_size or None,
        **limits,
    )
    _log_to_stderr()
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    listener = Listener(archive, config)
    try:
        listener.start()
    except OSError as exc:
        click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    try:
        allowed = ", ".join(sorted(config.allowed_calling)) or "any"
        click.echo(
            f"listening as {config.ae_title} on {host}:{listener.port} for {archive} "
            f"(calling AEs: {allowed}; peers: {', '.join(sorted(config.peers)) or 'none'})",
            err=True,
        )
        stopped.wait()
        click.echo("stopping", err=True)
    finally:
        listener.stop()


def _log_to_stderr() -> None:
    """One line per association and per failure; pynetdicom's own only when it warns."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    ours = logging.getLogger("dicomweb_archive")
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
