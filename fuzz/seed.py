#!/usr/bin/env python3
"""Splits CloudTrail files into fuzz seeds: one record per file for the
`record` target, one statement per file for `partiql`.

    fuzz/seed.py OUT_DIR FILE_OR_DIR...

writes OUT_DIR/record/ and OUT_DIR/partiql/. `make fuzz` runs it on the
real fixtures at run time (they are not copied into the repository); the
committed seeds under fuzz/corpus/ came from events/ the same way.
"""
import gzip
import hashlib
import json
import os
import sys


def documents(paths):
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                for name in sorted(files):
                    if name.endswith((".json", ".gz")):
                        yield os.path.join(root, name)
        else:
            yield path


def statements(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() == "statement" and isinstance(item, str):
                yield item
            else:
                yield from statements(item)
    elif isinstance(value, list):
        for item in value:
            yield from statements(item)


def write(directory, text):
    os.makedirs(directory, exist_ok=True)
    data = text.encode()
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    for path in documents(paths):
        with open(path, "rb") as f:
            raw = f.read()
        try:
            doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        except ValueError:
            continue
        records = doc.get("Records") if isinstance(doc, dict) else None
        for record in records if isinstance(records, list) else []:
            write(os.path.join(out, "record"), json.dumps(record, separators=(",", ":")))
            for statement in statements(record.get("requestParameters")):
                write(os.path.join(out, "partiql"), statement)


if __name__ == "__main__":
    main()
