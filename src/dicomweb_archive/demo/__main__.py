"""``python -m dicomweb_archive.demo [FOLDER]``: the main job on built-in sample data.

Generates a synthetic CT study, takes a few of pydicom's bundled files (other
modalities and transfer syntaxes), converts everything into ``FOLDER/archive``
and prints what was made and where.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import warnings
from pathlib import Path

import orjson

from dicomweb_archive import Converter, ConvertOptions, tags
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.model import paths
from dicomweb_archive.types import JSONDataset, first_value

BUNDLED = (
    "MR_small.dcm",
    "SC_rgb_rle_2frame.dcm",
    "JPEG2000.dcm",
    "color3d_jpeg_baseline.dcm",
    "rtdose.dcm",
    "test-SR.dcm",
)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _first(row: JSONDataset, key: str) -> object:
    """The first value as shown: a person name by its alphabetic group."""
    first = first_value(row, key, "")
    return first.get("Alphabetic", "") if isinstance(first, dict) else first


def run(folder: Path) -> int:
    warnings.filterwarnings("ignore", module="pydicom")
    from pydicom.data import get_testdata_file

    inputs = folder / "input"
    archive = folder / "archive"
    # Only what an earlier run made goes: FOLDER may hold anything else.
    shutil.rmtree(inputs, ignore_errors=True)
    shutil.rmtree(archive, ignore_errors=True)
    print(f"generating a synthetic 120-slice CT study in {inputs / 'ct'}")
    write_ct_series(inputs / "ct", slices=120)
    for name in BUNDLED:
        source = get_testdata_file(name)
        if source:
            (inputs / "bundled").mkdir(parents=True, exist_ok=True)
            shutil.copy(str(source), inputs / "bundled" / name)
    print(f"converting {sum(1 for p in inputs.rglob('*') if p.is_file())} files into {archive}")
    result = Converter(archive, ConvertOptions()).convert([str(inputs)])
    print(
        f"  {result.counts['converted']} converted, {result.counts['updated']} updated, "
        f"{result.counts['failed']} failed, "
        f"{result.frames} frames in {result.seconds:.2f} s "
        f"({result.instances_per_second:,.0f} instances/s)"
    )
    for failure in result.failures:
        print(f"  failed: {failure.name}: {failure.reason}")
    rows = orjson.loads(gzip.decompress((archive / paths.STUDIES_INDEX).read_bytes()))
    print(
        f"\n{len(rows)} studies in {archive} ({_size(archive) / 1e6:.1f} MB, "
        f"inputs {_size(inputs) / 1e6:.1f} MB):"
    )
    for row in rows:
        study = str(_first(row, tags.StudyInstanceUID))
        print(
            f"  {_first(row, '00100010')!s:<22} {_first(row, '00080061')!s:<4} "
            f"{_first(row, '00201208')!s:>4} instances  studies/{study}"
        )
    ct = rows[[_first(r, tags.ModalitiesInStudy) for r in rows].index("CT")] if rows else None
    if ct is not None:
        study = str(_first(ct, tags.StudyInstanceUID))
        [series] = [s for s in (archive / "studies" / study / "series").iterdir() if s.is_dir()]
        instance = sorted((series / "instances").iterdir())[0]
        print("\nwhat one study holds (WADO-RS / QIDO-RS paths, JSON gzipped):")
        for path in (
            archive / paths.STUDIES_INDEX,
            archive / paths.study_metadata(study),
            archive / paths.deduplicated(study),
            series / "metadata.gz",
            series / "instances" / "index.json.gz",
            instance / "metadata.gz",
            instance / "frames" / "1",
            instance / "info.json.gz",
        ):
            print(f"  {path.relative_to(archive)}  ({path.stat().st_size:,} bytes)")
    print(
        f"\nserve it over DICOMweb: .venv/bin/dwa serve {archive} --viewer auto"
        "  (http://127.0.0.1:8042/dicomweb: QIDO-RS, WADO-RS, STOW-RS; a study browser"
        " at http://127.0.0.1:8042/, OHIF at /viewer after .venv/bin/dwa viewer install)"
        "\nor as static files: deploy/nginx.conf (OHIF with staticWado: true);"
        f"\nprogressive loading: .venv/bin/dwa transcode {archive}, then deploy/README.md;"
        f"\nconvert more: .venv/bin/dwa convert FILES... -o {archive}"
    )
    return 0 if result.ok else 1


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "demo")
    raise SystemExit(run(folder))


if __name__ == "__main__":
    main()
