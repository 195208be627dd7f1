#!/usr/bin/env python3
"""Checks `ddb-audit analyze --format json` output against hand-checked rows.

Usage: check_rows.py EXPECTED.jsonl ACTUAL.jsonl

Every expected row must appear exactly once (matched on account, region,
table, caller) with every field it lists equal; any row not expected fails.
"""
import json
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def key(row):
    return (row["account"], row["region"], row["table"], row["caller"])


def main(expected_path, actual_path):
    expected, actual = load(expected_path), load(actual_path)
    by_key = {}
    failures = []
    for row in actual:
        if key(row) in by_key:
            failures.append(f"duplicate row {key(row)}")
        by_key[key(row)] = row
    for want in expected:
        got = by_key.pop(key(want), None)
        if got is None:
            failures.append(f"missing row {key(want)}")
            continue
        for field, value in want.items():
            if got.get(field) != value:
                failures.append(f"{key(want)}: {field} is {got.get(field)!r}, expected {value!r}")
    for extra in by_key:
        failures.append(f"unexpected row {extra}")
    for f in failures:
        print(f"FAIL {f}")
    bad_rows = {f.split(": ")[0] for f in failures}
    passed = len(expected) - len([w for w in expected if str(key(w)) in bad_rows or f"missing row {key(w)}" in failures])
    print(f"real fixtures: {passed} passed, {len(expected) - passed} failed ({len(failures)} problems)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
