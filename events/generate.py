#!/usr/bin/env python3
"""Writes the sample inputs under events/ from events/cloudtrail/records.json.

records.json is the one hand-written sample: a CloudTrail file, pretty-printed
so a person can read it. From it this script writes what ddb-audit meets in
the wild:

- cloudtrail/111122223333_CloudTrail_us-east-1_20240315T1205Z_sample.json.gz:
  the same file as CloudTrail delivers it to S3 (compact JSON, gzip).
- logs-ingest/cloudwatch-logs-subscription.json: the Lambda event a CloudWatch
  Logs subscription filter on the trail's log group sends, one log event per
  record (`{"awslogs": {"data": base64(gzip(DATA_MESSAGE))}}`).
- logs-ingest/cloudwatch-logs-control.json: the CONTROL_MESSAGE health check
  CloudWatch Logs sends when a subscription is created.
- logs-ingest/cloudwatch-logs-later.json: a later CloudWatch Logs batch, from
  later/records.json (an hour on: a caller never seen before, a known one, and
  a first call that was denied). `make demo` feeds it after the S3 file, so the
  notifier has a new caller to tell about.

Standard library only, and deterministic (gzip mtime 0, fixed ids): running it
twice gives byte-identical files. The integration tests (tests/it/events.rs)
fail when a generated file no longer matches records.json, so run this after
editing records.json:

    python3 events/generate.py
"""

import base64
import gzip
import hashlib
import json
from datetime import datetime
from pathlib import Path

EVENTS = Path(__file__).resolve().parent
RECORDS = EVENTS / "cloudtrail" / "records.json"
LATER_RECORDS = EVENTS / "later" / "records.json"
TRAIL_FILE = EVENTS / "cloudtrail" / "111122223333_CloudTrail_us-east-1_20240315T1205Z_sample.json.gz"
LOGS_DATA = EVENTS / "logs-ingest" / "cloudwatch-logs-subscription.json"
LOGS_CONTROL = EVENTS / "logs-ingest" / "cloudwatch-logs-control.json"
LOGS_LATER = EVENTS / "logs-ingest" / "cloudwatch-logs-later.json"

ACCOUNT = "111122223333"
LOG_GROUP = f"aws-cloudtrail-logs-{ACCOUNT}"
LOG_STREAM = f"{ACCOUNT}_CloudTrail_us-east-1"
SUBSCRIPTION_FILTER = "ddb-audit-logs-ingest"


def compact(value):
    """JSON as CloudTrail and CloudWatch Logs write it: one line, no spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def gzipped(text):
    # mtime=0 and no file name in the header keep the output reproducible.
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def epoch_millis(event_time):
    return int(datetime.fromisoformat(event_time.replace("Z", "+00:00")).timestamp() * 1000)


def log_event_id(timestamp, event_id):
    """A 56-digit id shaped like CloudWatch Logs' own: ordered by time first."""
    digest = int(hashlib.sha256(event_id.encode("utf-8")).hexdigest(), 16)
    return f"3{timestamp:013d}{digest % 10**42:042d}"


def write_json(path, value):
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def write_logs_event(path, records):
    """The subscription event CloudWatch Logs sends for `records`, one log
    event per record; returns the log events."""
    log_events = []
    for record in records:
        timestamp = epoch_millis(record["eventTime"])
        log_events.append(
            {
                "id": log_event_id(timestamp, record["eventID"]),
                "timestamp": timestamp,
                "message": compact(record),
            }
        )
    data_message = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": LOG_GROUP,
        "logStream": LOG_STREAM,
        "subscriptionFilters": [SUBSCRIPTION_FILTER],
        "logEvents": log_events,
    }
    awslogs = base64.b64encode(gzipped(compact(data_message))).decode("ascii")
    write_json(path, {"awslogs": {"data": awslogs}})
    return log_events


def main():
    records = json.loads(RECORDS.read_text(encoding="utf-8"))["Records"]

    TRAIL_FILE.write_bytes(gzipped(compact({"Records": records})))

    log_events = write_logs_event(LOGS_DATA, records)
    write_logs_event(LOGS_LATER, json.loads(LATER_RECORDS.read_text(encoding="utf-8"))["Records"])

    control_message = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": log_events[-1]["timestamp"] if log_events else 0,
                "message": "CWL CONTROL MESSAGE: Checking health of destination Lambda function.",
            }
        ],
    }
    control = base64.b64encode(gzipped(compact(control_message))).decode("ascii")
    write_json(LOGS_CONTROL, {"awslogs": {"data": control}})

    for path in (TRAIL_FILE, LOGS_DATA, LOGS_CONTROL, LOGS_LATER):
        print(path.relative_to(EVENTS.parent))


if __name__ == "__main__":
    main()
