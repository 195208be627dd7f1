#!/usr/bin/env python3
"""The Python peer: what most Python Lambda handlers for CloudTrail do.

Usage: python_peer.py FILE...

For each gzip CloudTrail file: gzip + json.load, loop over Records, keep the
DynamoDB events, take the caller (sessionIssuer ARN, else the identity ARN,
else invokedBy) and the table(s) from requestParameters (tableName, the keys
of requestItems/transactItems or their entries' tableName), and count per
(table, caller). Prints records per CPU second (time.process_time, so the
interpreter's start-up is not counted) on one line:
records=N dynamodb=D keys=K cpu_s=S records_per_cpu_s=R
"""
import gzip
import json
import sys
import time
from collections import Counter


def caller_of(identity):
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    return issuer.get("arn") or identity.get("arn") or identity.get("invokedBy") or "unknown"


def tables_of(params):
    if not params:
        return []
    if params.get("tableName"):
        return [params["tableName"]]
    tables = []
    for field in ("requestItems", "transactItems"):
        items = params.get(field)
        if isinstance(items, dict):
            tables.extend(items.keys())
        elif isinstance(items, list):
            for item in items:
                name = item.get("tableName") or item.get("TableName")
                if name:
                    tables.append(name)
    return tables


def main():
    counts = Counter()
    records = dynamodb = 0
    start = time.process_time()
    for path in sys.argv[1:]:
        with gzip.open(path, "rb") as f:
            doc = json.load(f)
        for record in doc.get("Records", []):
            records += 1
            if record.get("eventSource") != "dynamodb.amazonaws.com":
                continue
            dynamodb += 1
            caller = caller_of(record.get("userIdentity") or {})
            for table in tables_of(record.get("requestParameters")) or [None]:
                counts[(table, caller)] += 1
    cpu = time.process_time() - start
    print(f"records={records} dynamodb={dynamodb} keys={len(counts)} cpu_s={cpu:.3f} "
          f"records_per_cpu_s={records / cpu:.0f}")


if __name__ == "__main__":
    main()
