from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.convert.converter import ConversionResult
from dicomweb_archive.convert.inputs import InputRef, Spool, UnreadableInput, anchored, expand
from dicomweb_archive.errors import MalformedDicomError

DWA = [sys.executable, "-m", "dicomweb_archive.cli"]
CT_SMALL = Path(get_testdata_file("CT_small.dcm"))
#: The first bytes of a macOS folder's .DS_Store and of a Windows Thumbs.db (OLE).
DS_STORE = b"\x00\x00\x00\x01Bud1\x00\x00\x10\x00\x00\x00\x08\x00" + bytes(4080)
THUMBS_DB = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088)


def convert(archive: Path, *inputs: Path | str) -> ConversionResult:
    return Converter(archive, ConvertOptions(workers=1)).convert([str(i) for i in inputs])


def reasons(outcomes: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {Path(o.name).name: o.reason for o in outcomes}


def test_plainly_not_dicom_files_in_a_folder_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(CT_SMALL, folder / "ct.dcm")
    (folder / "README").write_text("Scans of 2024.\n")
    (folder / ".DS_Store").write_bytes(DS_STORE)
    (folder / "Thumbs.db").write_bytes(THUMBS_DB)
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "damaged.dcm").write_bytes(CT_SMALL.read_bytes()[:1000])
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("README.TXT", "Viewer included.\n")
        zf.writestr("damaged.dcm", CT_SMALL.read_bytes()[:1000])
    named = tmp_path / "notes.txt"
    named.write_text("not DICOM\n")

    result = convert(tmp_path / "archive", folder, bundle, named)

    assert result.counts["converted"] == 1
    skipped = reasons(result.skipped)
    assert set(skipped) == {"README", ".DS_Store", "Thumbs.db", "bundle.zip:README.TXT"}
    assert all(r.startswith("not a DICOM file") for r in skipped.values())
    failed = reasons(result.failures)
    assert set(failed) == {"empty.dcm", "damaged.dcm", "bundle.zip:damaged.dcm", "notes.txt"}
    assert failed["empty.dcm"] == "empty file"
    assert failed["notes.txt"].startswith("not a DICOM file")


def test_special_files_in_a_folder_are_skipped_without_blocking(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(CT_SMALL, folder / "ct.dcm")
    os.mkfifo(folder / "fifo")
    # AF_UNIX paths are short: bind from inside the folder.
    cwd = os.getcwd()
    os.chdir(folder)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind("sock")
    finally:
        os.chdir(cwd)
    try:
        # A subprocess, so that a blocked open() cannot hang the test run.
        proc = subprocess.run(
            [*DWA, "convert", str(folder), "/dev/null", "-o", str(tmp_path / "a"), "--json"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    finally:
        sock.close()
    summary = orjson.loads(proc.stdout)
    assert summary["converted"] == 1
    assert summary["skippedInputs"] == [
        {"input": str(folder / "fifo"), "reason": "not a regular file (FIFO)"},
        {"input": str(folder / "sock"), "reason": "not a regular file (socket)"},
    ]
    assert summary["failures"] == [
        {"input": "/dev/null", "reason": "not a regular file or folder (character device)"}
    ]


def test_symbolic_links_loops_and_broken_ones_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(CT_SMALL, folder / "sub" / "ct.dcm")
    (folder / "sub" / "up").symlink_to("..")  # a loop back to "in"
    (folder / "again").symlink_to("sub")  # the same folder under a second name
    (folder / "self").symlink_to("self")
    (folder / "dangling").symlink_to("nowhere")
    loop = tmp_path / "loop"
    loop.symlink_to("loop")

    result = convert(tmp_path / "archive", folder, loop)

    assert result.counts["converted"] == 1
    assert reasons(result.skipped) == {
        "up": "symbolic link loop",
        "sub": "folder already read",
    }
    assert reasons(result.failures) == {
        "self": "symbolic link loop",
        "dangling": "broken symbolic link",
        "loop": "symbolic link loop",
    }


def _expand_as_nobody(folder: Path) -> list[tuple[str, str]]:
    """The failures of ``expand(folder)`` as nobody would meet them (root reads all)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if os.geteuid() == 0:
                os.setuid(65534)
            with Spool(str(folder / "spool")) as spool:
                errors = [
                    (e.name, e.reason)
                    for e in expand([str(folder)], spool)
                    if isinstance(e, UnreadableInput) and not e.skipped
                ]
            os.write(write, orjson.dumps(errors))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return [tuple(e) for e in orjson.loads(data)]  # type: ignore[misc]


def test_an_unreadable_subfolder_is_a_failure(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "locked").mkdir(parents=True)
    shutil.copy(CT_SMALL, folder / "ct.dcm")
    reach = [p for p in tmp_path.parents if p.is_relative_to(tempfile.gettempdir())]
    for path in (folder, tmp_path, *reach):
        path.chmod(path.stat().st_mode | 0o055)  # nobody may reach the folder
    (folder / "locked").chmod(0)
    try:
        failures = _expand_as_nobody(folder)
    finally:
        (folder / "locked").chmod(0o700)
    assert failures == [(str(folder / "locked"), "cannot read folder: permission denied")]


def test_stdin_is_named_dash_and_its_spool_file_never_stays(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.write(CT_SMALL, "ct.dcm")
        zf.writestr("bad.dcm", CT_SMALL.read_bytes()[:1000])
    for stdin, expected in (
        (b"hello, not DICOM", "-"),
        (bundle.read_bytes(), "-:bad.dcm"),
        (b"PK\x03\x04 a broken ZIP", "-"),
    ):
        proc = subprocess.run(
            [*DWA, "convert", "-", "-o", str(archive), "--json", "-w", "1"],
            input=stdin,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        [failure] = orjson.loads(proc.stdout)["failures"]
        assert failure["input"] == expected
        assert f"failed: {expected}: ".encode() in proc.stderr
        assert list((archive / ".dwa" / "tmp").iterdir()) == []


def test_control_characters_in_names_cannot_forge_lines(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    forged = "x.dcm: empty file\nfailed: passwd\x1b[2K"
    (folder / forged).write_bytes(b"")
    (folder / b"latin-1 \xe9.dcm".decode(errors="surrogateescape")).write_bytes(b"")
    proc = subprocess.run(
        [*DWA, "convert", str(folder), "-o", str(tmp_path / "archive"), "--json", "-w", "1"],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    failed = [line for line in lines if line.startswith("failed:")]
    assert failed == [
        f"failed: {folder}/latin-1 \\\\xe9.dcm: empty file",
        f"failed: {folder}/x.dcm: empty file\\nfailed: passwd\\x1b[2K: empty file",
    ]
    inputs = [f["input"] for f in orjson.loads(proc.stdout)["failures"]]
    assert inputs == [f"{folder}/latin-1 \\xe9.dcm", f"{folder}/{forged}"]


def test_a_full_disk_is_named_and_leaves_no_spool_file(
    tmp_path: Path, small_filesystem: Callable[[int], Path]
) -> None:
    archive = small_filesystem(160 * 1024) / "archive"
    convert(archive, CT_SMALL)  # creates the archive; fills most of the space
    stdin = CT_SMALL.read_bytes() * 16
    proc = subprocess.run(
        [*DWA, "convert", "-", "-o", str(archive), "--json", "-w", "1"],
        input=stdin,
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert b"Traceback" not in proc.stderr
    [failure] = orjson.loads(proc.stdout)["failures"]
    assert failure == {
        "input": "-",
        "reason": "cannot read stdin into a file: no space left on device",
    }
    assert list((archive / ".dwa" / "tmp").iterdir()) == []


@pytest.mark.parametrize("size", [48, 128, 144])
def test_a_full_disk_while_writing_is_named(
    size: int, small_filesystem: Callable[[int], Path]
) -> None:
    # Some sizes end in an instance's files, others in the study's documents.
    archive = small_filesystem(size * 1024) / "archive"
    source = Path(get_testdata_file("emri_small.dcm"))
    proc = subprocess.run(
        [*DWA, "convert", str(source), "-o", str(archive), "--json", "-w", "1"],
        capture_output=True,
        check=False,
    )
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr
    if proc.returncode == 0:
        return
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert len(lines) >= 1 and "no space left on device" in lines[0], lines
    assert "cannot read" not in proc.stderr.decode()


def test_damaged_and_encrypted_zip_members_are_named(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_STORED) as zf:
        zf.write(CT_SMALL, "bad-crc.dcm")
        zf.write(CT_SMALL, "locked.dcm")
        zf.write(CT_SMALL, "good.dcm")
    data = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as zf:
        bad, locked = zf.getinfo("bad-crc.dcm"), zf.getinfo("locked.dcm")
    data[bad.header_offset + 30 + len(bad.filename) + 2000] ^= 0xFF  # a stored byte
    # The encryption flag, in the local header and in the central directory.
    data[locked.header_offset + 6] |= 1
    central = data.index(b"locked.dcm", data.index(b"PK\x01\x02")) - 46
    data[central + 8] |= 1
    bundle.write_bytes(bytes(data))

    result = convert(tmp_path / "archive", bundle)

    assert result.counts["unchanged"] + result.counts["converted"] == 1
    assert {o.name: o.reason for o in result.failures} == {
        f"{bundle}:bad-crc.dcm": "damaged ZIP member: bad CRC-32",
        f"{bundle}:locked.dcm": "encrypted ZIP member",
    }


# -- expand and open, on their own ---------------------------------------------------


def test_expand_walks_folders_in_name_order_and_opens_zips(tmp_path: Path) -> None:
    source = CT_SMALL.read_bytes()
    (tmp_path / "in" / "b").mkdir(parents=True)
    for name in ("b/2.dcm", "a.dcm", "c.dcm"):
        (tmp_path / "in" / name).write_bytes(source)
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("z.dcm", source)
        zf.writestr("m.dcm", source)
    with Spool(str(tmp_path / "spool")) as spool:
        found = list(expand([str(tmp_path / "in"), str(bundle)], spool))
    assert [(Path(r.path).name, getattr(r, "member", None)) for r in found] == [
        ("a.dcm", None),
        ("2.dcm", None),  # b/2.dcm: entries in name order, folders among them
        ("c.dcm", None),
        ("bundle.zip", "m.dcm"),
        ("bundle.zip", "z.dcm"),
    ]
    assert found[3].name == f"{bundle}:m.dcm"


def test_unreadable_inputs_are_values_not_exceptions(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with Spool(str(tmp_path / "spool")) as spool:
        found = list(expand([str(tmp_path / "missing"), str(broken)], spool))
    assert all(isinstance(item, UnreadableInput) for item in found)
    assert not any(isinstance(item, BaseException) for item in found)
    assert [Path(item.path).name for item in found] == ["missing", "broken.zip"]
    assert found[1].reason.startswith("unreadable ZIP file")


def test_open_inflates_gzip_and_reads_zip_members(tmp_path: Path) -> None:
    packed = tmp_path / "a.dcm.gz"
    packed.write_bytes(gzip.compress(b"DICOM bytes"))
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("m.dcm", b"member bytes")
    with InputRef(str(packed)).open() as fp:
        assert fp.read() == b"DICOM bytes"
    with InputRef(str(bundle), "m.dcm").open() as fp:
        assert fp.read() == b"member bytes"
        fp.seek(0)  # spooled: seekable for the parser


def test_open_refuses_broken_gzip(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(bytes(10000))[:30])
    with pytest.raises(MalformedDicomError, match="bad gzip data"), InputRef(str(broken)).open():
        pass


def test_an_anchored_input_opens_from_any_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster's worker has its own working folder: a relative input is opened
    relative to the client's, and a failure still names it as given."""
    (tmp_path / "in").mkdir()
    shutil.copyfile(get_testdata_file("CT_small.dcm"), tmp_path / "in" / "ct.dcm")
    with zipfile.ZipFile(tmp_path / "in" / "b.zip", "w") as bundle:
        bundle.write(get_testdata_file("MR_small.dcm"), "m.dcm")
    monkeypatch.chdir(tmp_path)
    ct, member, gone = (
        anchored(InputRef(os.path.join("in", name), member))
        for name, member in (("ct.dcm", None), ("b.zip", "m.dcm"), ("gone.dcm", None))
    )
    assert ct.folder == str(tmp_path) and ct.name == os.path.join("in", "ct.dcm")
    assert anchored(ct) is ct
    absolute = InputRef(str(tmp_path / "in" / "ct.dcm"))
    assert anchored(absolute) is absolute
    monkeypatch.chdir(tmp_path / "in")
    with ct.open() as fp:
        assert fp.read()[128:132] == b"DICM"
    with member.open() as fp:
        assert fp.read()[128:132] == b"DICM"
    with pytest.raises(FileNotFoundError) as missing, gone.open():
        pass
    assert missing.value.filename == os.path.join("in", "gone.dcm")
