"""Write ``deidentify/attributes.json`` from PS3.15 Table E.1-1 as the standard publishes it.

The input is the table extracted from the standard's own part15 (the
``standard/confidentiality_profile_attributes.json`` of the public repository
innolitics/dicom-standard, made from part15.html); this script only renames its
columns to the profile option names ``dwa`` uses and records where it came from,
so the shipped table is the standard's, regenerated rather than edited::

    python scripts/confidentiality_profile.py PATH/confidentiality_profile_attributes.json \\
        --source "innolitics/dicom-standard@COMMIT" \\
        -o src/dicomweb_archive/deidentify/attributes.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

#: The source's column for each option, by the option's name in ``--deidentify``.
COLUMNS = {
    "retain-safe-private": "rtnSafePrivOpt",
    "retain-uids": "rtnUIDsOpt",
    "retain-device-identity": "rtnDevIdOpt",
    "retain-institution-identity": "rtnInstIdOpt",
    "retain-patient-characteristics": "rtnPatCharsOpt",
    "retain-long-full-dates": "rtnLongFullDatesOpt",
    "retain-long-modified-dates": "rtnLongModifDatesOpt",
    "clean-descriptors": "cleanDescOpt",
    "clean-structured-content": "cleanStructContOpt",
    "clean-graphics": "cleanGraphOpt",
}
CODES = {"X", "Z", "D", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
_TAG = re.compile(r"^\(([0-9A-FX]{4}),([0-9A-FX]{4})\)$")
PRIVATE = "(GGGG,EEEE) WHERE GGGG IS ODD"


def convert(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """The rows as ``{"tag", "name", "basic", "options"}``; tags keep their ``x`` masks."""
    out: list[dict[str, object]] = []
    for row in rows:
        tag = row["tag"].strip().upper()
        match = _TAG.match(tag)
        if match:
            key = (match.group(1) + match.group(2)).lower()
        elif tag == PRIVATE:
            key = "private"
        else:
            raise SystemExit(f"unexpected tag {tag!r} in row {row['name']!r}")
        codes = {name: row[column].strip() for name, column in COLUMNS.items() if row.get(column)}
        for code in (row["basicProfile"], *codes.values()):
            if code not in CODES:
                raise SystemExit(f"unexpected action {code!r} in row {row['name']!r}")
        out.append(
            {
                "tag": key,
                "name": " ".join(row["name"].split()),
                "basic": row["basicProfile"],
                **codes,
            }
        )
    return sorted(out, key=lambda r: str(r["tag"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="confidentiality_profile_attributes.json")
    parser.add_argument("--source", dest="origin", required=True, help="repository@commit")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    data = args.source.read_bytes()
    document = {
        "table": "DICOM PS3.15 Table E.1-1 Application Level Confidentiality Profile Attributes",
        "source": f"{args.origin}:standard/confidentiality_profile_attributes.json",
        "sha256": hashlib.sha256(data).hexdigest(),
        "generator": "scripts/confidentiality_profile.py",
        "attributes": convert(json.loads(data)),
    }
    count = len(document["attributes"])
    # One attribute a line: a regenerated table reads as a diff of rows.
    rows = ",\n".join(
        "  " + json.dumps(row, ensure_ascii=False) for row in document.pop("attributes")
    )
    head = json.dumps(document, indent=1, ensure_ascii=False)[:-2]
    text = f'{head},\n "attributes": [\n{rows}\n ]\n}}\n'
    args.output.write_text(text, encoding="utf-8")
    print(f"{count} attributes -> {args.output}")


if __name__ == "__main__":
    main()
