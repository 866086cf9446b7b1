"""The options the commands share: UIDs checked before any work, workers, --json, --quiet."""

from __future__ import annotations

import click
from click.testing import CliRunner

from dicomweb_archive.cli.options import (
    json_option,
    quiet_option,
    series_option,
    studies_option,
    workers_option,
)


@click.command()
@studies_option
@series_option
@workers_option
@json_option
@quiet_option
def command(
    studies: tuple[str, ...],
    series: tuple[str, ...],
    workers: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    click.echo(f"{studies} {series} {workers} {as_json} {quiet}")


def test_values_arrive_under_their_names() -> None:
    result = CliRunner().invoke(
        command, ["--study", "1.2.3", "--study", "1.2.4", "--series", "1.5", "-w", "2", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == "('1.2.3', '1.2.4') ('1.5',) 2 False True\n"
    defaults = CliRunner().invoke(command, ["--json"])
    assert defaults.output == "() () None True False\n"


def test_a_bad_uid_or_worker_count_is_a_usage_error() -> None:
    for args, named in (
        (["--study", "1.2.x"], "'1.2.x' is not a valid UID"),
        (["--series", "1..2"], "'1..2' is not a valid UID"),
        (["--workers", "0"], "--workers"),
    ):
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 2, args
        assert named in result.output
