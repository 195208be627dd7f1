#!/usr/bin/env python3
"""`make demo`: the whole ddb-audit pipeline on a local AWS emulator.

Starts moto's server on 127.0.0.1, creates what the SAM template would (the
summary table, an SNS topic with a queue subscribed to it standing in for the
email, the trail bucket), then runs the three real Lambda function binaries
through the Lambda runtime interface with `cargo lambda watch`, invoking them
with `cargo lambda invoke --data-file events/...`:

1. s3-ingest gets the SQS-wrapped S3 notification of events/s3-ingest/sqs-s3.json
   for the sample CloudTrail file, uploaded to the bucket under the key that
   notification names;
2. the notifier gets the summary table's stream records, as Lambda's DynamoDB
   event source would hand them over;
3. logs-ingest gets a later CloudWatch Logs batch
   (events/logs-ingest/cloudwatch-logs-later.json), with a caller never seen
   before;
4. the notifier runs again on the new stream records.

It prints the notices as the subscribed queue received them and the rollups
(`ddb-audit callers`), then stops everything it started. Everything it writes
goes under target/demo/ (the servers' logs stay there for a look afterwards).

With --keep (`make demo KEEP=1`) moto keeps running after a successful demo,
holding the summary table and everything else the demo made, and the demo
prints the `export` lines (also written to target/demo/env.sh) that point the
CLI at it, so the query examples can be tried. `make demo-stop` stops it (its
process group id is in target/demo/moto.pid); the next demo stops it too.

Run it through `make demo`, which builds the binaries and installs the pinned
moto and cargo-lambda into .venv first; this script expects the python of
that .venv (boto3 comes with moto).
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "demo"
EVENTS = ROOT / "events"
SAMPLE_FILE = EVENTS / "cloudtrail" / "111122223333_CloudTrail_us-east-1_20240315T1205Z_sample.json.gz"
S3_EVENT = EVENTS / "s3-ingest" / "sqs-s3.json"
LOGS_EVENT = EVENTS / "logs-ingest" / "cloudwatch-logs-later.json"
# The process group of the moto `--keep` leaves running.
MOTO_PID = WORK / "moto.pid"

REGION = "us-east-1"
TABLE = "ddb-audit-demo"
TOPIC = "ddb-audit-notices"
INBOX = "ddb-audit-notices-inbox"
FUNCTIONS = ("s3-ingest", "logs-ingest", "notifier")

# Every wait is bounded: a step that does not finish in time fails the demo
# with the log that says why.
SERVER_START_SECONDS = 60
INVOKE_SECONDS = 600
STREAM_PAGES = 100


def say(message):
    print(f"\n==> {message}", flush=True)


def detail(message):
    print(f"    {message}", flush=True)


class DemoError(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path, lines=30):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Processes:
    """The servers the demo starts, each in its own process group, stopped
    (the whole group) on exit, however the demo ends."""

    def __init__(self):
        self.running = []

    def start(self, name, argv, log, env=None, stdin=subprocess.DEVNULL):
        handle = open(log, "wb")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=stdin,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, proc, handle))
        return proc

    def stop(self, keep=()):
        for name, proc, handle in reversed(self.running):
            if name in keep and proc.poll() is None:
                handle.close()
                detail(f"left {name} running (process group {proc.pid})")
                continue
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            handle.close()
            detail(f"stopped {name}")
        self.running.clear()


def wait_until(what, ready, proc, log):
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"{what} exited with {proc.returncode}:\n{log_tail(log)}")
        if ready():
            return
        time.sleep(0.2)
    raise DemoError(f"{what} not ready within {SERVER_START_SECONDS} s:\n{log_tail(log)}")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Watch:
    """`cargo lambda watch` and the invokes sent to it."""

    def __init__(self, port, log):
        self.port = port
        self.log = log
        self.read_to = 0

    def invoke(self, function, data_file):
        argv = [
            "cargo", "lambda", "invoke", function,
            "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port),
            "--data-file", str(data_file),
        ]
        shown = " ".join(argv[:4]) + f" --data-file {Path(data_file).relative_to(ROOT)}"
        detail(f"$ {shown}")
        try:
            done = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, timeout=INVOKE_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"{function} gave no answer within {INVOKE_SECONDS} s:\n{log_tail(self.log)}")
        if done.returncode != 0:
            raise DemoError(
                f"{function} failed:\n{done.stdout}{done.stderr}\n--- function log ---\n{log_tail(self.log)}"
            )
        detail(f"response: {done.stdout.strip() or '(empty)'}")
        self.show_log(function)

    def show_log(self, function):
        """What the function logged for this invoke: its summary lines."""
        text = self.log.read_text(errors="replace")
        new, self.read_to = text[self.read_to:], len(text)
        for line in new.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            fields = entry.get("fields", {}) if isinstance(entry, dict) else {}
            message = fields.get("message", "")
            if not message or "AWS_LAMBDA_MAX_CONCURRENCY" in message:
                continue
            extra = {k: v for k, v in fields.items() if k not in ("message", "function")}
            suffix = "".join(f" {k}={v}" for k, v in extra.items())
            detail(f"{function} log: {message}{suffix}")


class Stream:
    """The summary table's DynamoDB stream, read as Lambda's event source
    mapping would, and handed over in the Lambda event's JSON."""

    def __init__(self, client, arn):
        self.client = client
        self.arn = arn
        self.seen = 0

    def new_records(self):
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        records = []
        for shard in shards:
            iterator = self.client.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            ).get("ShardIterator")
            for _ in range(STREAM_PAGES):
                if not iterator:
                    break
                page = self.client.get_records(ShardIterator=iterator)
                if not page["Records"]:
                    break
                for record in page["Records"]:
                    sequence = int(record["dynamodb"]["SequenceNumber"])
                    if sequence > self.seen:
                        records.append((sequence, self.lambda_record(record)))
                iterator = page.get("NextShardIterator")
        records.sort(key=lambda r: r[0])
        if records:
            self.seen = records[-1][0]
        return [record for _, record in records]

    def lambda_record(self, record):
        change = record["dynamodb"]
        out = {
            "ApproximateCreationDateTime": as_epoch(change.get("ApproximateCreationDateTime")),
            "Keys": wire(change.get("Keys", {})),
            "SequenceNumber": change["SequenceNumber"],
            "SizeBytes": change.get("SizeBytes", 0),
            "StreamViewType": change.get("StreamViewType", "NEW_AND_OLD_IMAGES"),
        }
        for image in ("NewImage", "OldImage"):
            if image in change:
                out[image] = wire(change[image])
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": record.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", REGION),
            "dynamodb": out,
            "eventSourceARN": self.arn,
        }


def as_epoch(value):
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def wire(value):
    """boto3's attribute values back into DynamoDB's JSON (binary as base64)."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value


def notices_delivered(sqs, queue_url, endpoint):
    """Every notice the queue subscribed to the topic has received so far, as
    (subject, the body an email subscriber gets).

    The queue gets the JSON body (for chat and automation); the plain text an
    email subscription gets is the `email` part of the same published
    message, which moto keeps (`/moto-api/data.json`)."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=30) as response:
        model = json.load(response)
    published = {
        sent[0]: sent[1]
        for topic in model.get("sns", {}).get("Topic", [])
        for sent in topic.get("sent_notifications", [])
    }
    notices = []
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = got.get("Messages", [])
        if not messages:
            break
        for message in messages:
            envelope = json.loads(message["Body"])
            try:
                email = json.loads(published[envelope["MessageId"]])["email"]
            except (KeyError, ValueError, TypeError):
                email = envelope.get("Message") or ""
            notices.append((envelope.get("Subject") or "", email))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return notices


def print_notices(notices, full):
    if not notices:
        detail("(no notices)")
    for subject, email in notices:
        detail(f"notice: {subject}")
        if full:
            for line in email.splitlines():
                print(f"        | {line}")


def run_notifier(stream, watch, event_file):
    """Hands the stream records written since the last call to the notifier,
    as one Lambda event saved in `event_file`."""
    records = stream.new_records()
    event_file.write_text(json.dumps({"Records": records}, indent=1))
    detail(f"{len(records)} stream records -> {event_file.relative_to(ROOT)}")
    watch.invoke("notifier", event_file)


def run(cli, processes, keep):
    say("Starting moto's server (a local AWS) on 127.0.0.1")
    moto_port = free_port()
    moto_log = WORK / "moto.log"
    moto_env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    if keep:
        # Not tied to this script's standard input: it outlives the demo.
        moto_env["DDB_AUDIT_MOTO_DETACHED"] = "1"
    moto = processes.start(
        "moto",
        [sys.executable, str(ROOT / "tests" / "moto_server.py"), "-H", "127.0.0.1", "-p", str(moto_port)],
        moto_log,
        env=moto_env,
        stdin=subprocess.DEVNULL if keep else subprocess.PIPE,
    )
    if keep:
        MOTO_PID.write_text(f"{moto.pid}\n")
    endpoint = f"http://127.0.0.1:{moto_port}"
    wait_until("moto", lambda: http_ok(f"{endpoint}/moto-api/"), moto, moto_log)
    detail(f"moto answers on {endpoint} (log: {moto_log.relative_to(ROOT)})")

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "SUMMARY_TABLE": TABLE,
    }
    for name in ("AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    aws = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    config = Config(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=60)

    def client(service):
        return aws.client(service, endpoint_url=endpoint, config=config)

    say(f"Creating the summary table `{TABLE}` with the CLI")
    detail(f"$ ddb-audit create-table --summary-table {TABLE}")
    subprocess.run([cli, "create-table", "--summary-table", TABLE], env=env, check=True, timeout=120)
    ddb = client("dynamodb")
    stream_arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    stream = Stream(client("dynamodbstreams"), stream_arn)

    say("Creating the notices topic, a queue subscribed to it (standing in for the email), and the trail bucket")
    sns, sqs, s3 = client("sns"), client("sqs"), client("s3")
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=INBOX)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    detail(f"topic {topic_arn}, subscribed queue {INBOX}")

    notification = json.loads(json.loads(S3_EVENT.read_text())["Records"][0]["body"])["Records"][0]["s3"]
    bucket, key = notification["bucket"]["name"], notification["object"]["key"]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=SAMPLE_FILE.read_bytes())
    detail(f"uploaded {SAMPLE_FILE.relative_to(ROOT)} as s3://{bucket}/{key}")

    say("Starting `cargo lambda watch` (the Lambda runtime interface) on 127.0.0.1")
    lambda_port = free_port()
    env_file = WORK / "functions.env"
    function_env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "SUMMARY_TABLE": TABLE,
        "TOPIC_ARN": topic_arn,
        # The notifier's learning period (24 hours by default) would keep a
        # new deployment quiet on its first day; the demo has no day to wait.
        "NOTIFY_LEARNING_HOURS": "0",
    }
    env_file.write_text("".join(f"{k}={v}\n" for k, v in function_env.items()))
    watch_log = WORK / "functions.log"
    watch_proc = processes.start(
        "cargo lambda watch",
        [
            "cargo", "lambda", "watch", "--ignore-changes",
            "--invoke-address", "127.0.0.1", "--invoke-port", str(lambda_port),
            "--env-file", str(env_file),
        ],
        watch_log,
        env=env,
    )
    wait_until("cargo lambda watch", lambda: port_open(lambda_port), watch_proc, watch_log)
    detail(f"functions run with {env_file.relative_to(ROOT)}; their logs go to {watch_log.relative_to(ROOT)}")
    watch = Watch(lambda_port, watch_log)

    say("1. S3 path: s3-ingest reads the uploaded CloudTrail file named by an S3 notification (through SQS)")
    detail("the same event also announces a digest file, which is passed over")
    watch.invoke("s3-ingest", S3_EVENT)

    say("2. The notifier gets the summary table's stream records")
    run_notifier(stream, watch, WORK / "stream-1.json")
    print_notices(notices_delivered(sqs, queue_url, endpoint), full=False)

    say("3. CloudWatch Logs path: logs-ingest gets a later batch, with a caller never seen before")
    watch.invoke("logs-ingest", LOGS_EVENT)

    say("4. The notifier runs on the new stream records: only the first appearances are news")
    run_notifier(stream, watch, WORK / "stream-2.json")
    later = notices_delivered(sqs, queue_url, endpoint)
    detail("as the queue received them; the text is what an email subscriber reads:")
    print_notices(later, full=True)
    if not later:
        raise DemoError("the later batch gave no notice; see target/demo/functions.log")

    say("The rollups in the summary table: who calls which table (`ddb-audit callers`)")
    detail(f"$ ddb-audit callers --summary-table {TABLE}")
    sys.stdout.flush()
    subprocess.run([cli, "callers", "--summary-table", TABLE], env=env, check=True, timeout=120)
    return endpoint


def exports(endpoint):
    """The shell lines that point the CLI at the kept moto."""
    return [
        f"export AWS_ENDPOINT_URL={endpoint}",
        f"export AWS_REGION={REGION} AWS_DEFAULT_REGION={REGION}",
        "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
        f"export SUMMARY_TABLE={TABLE}",
        f'export PATH="{ROOT / "target" / "debug"}:$PATH"',
    ]


def stop_kept_moto():
    """Stops the moto a previous `make demo KEEP=1` left running."""
    try:
        pid = int(MOTO_PID.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
        detail(f"stopped the moto a previous `make demo KEEP=1` left running (process group {pid})")
    except (ProcessLookupError, PermissionError):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default=str(ROOT / "target" / "debug" / "ddb-audit"),
                        help="the ddb-audit binary (default: target/debug/ddb-audit)")
    parser.add_argument("--keep", action="store_true",
                        help="leave moto running afterwards and print the export lines to query it")
    args = parser.parse_args()
    if shutil.which("cargo-lambda") is None:
        sys.exit("cargo-lambda is not on PATH: run `make demo` (it installs it into .venv)")
    stop_kept_moto()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    started = time.monotonic()
    processes = Processes()
    endpoint = None
    try:
        endpoint = run(args.cli, processes, args.keep)
    except (DemoError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        print(f"\ndemo failed: {e}", file=sys.stderr)
        return 1
    finally:
        say("Stopping what the demo started")
        kept = ("moto",) if args.keep and endpoint else ()
        processes.stop(keep=kept)
        if args.keep and not endpoint:
            MOTO_PID.unlink(missing_ok=True)
    say(f"Done in {time.monotonic() - started:.0f} s. Logs: target/demo/")
    if args.keep:
        lines = exports(endpoint)
        (WORK / "env.sh").write_text("".join(f"{line}\n" for line in lines))
        say("moto is still running with the demo's summary table. To query it, paste these lines")
        detail("(or run `. target/demo/env.sh`):")
        print()
        for line in lines:
            print(line)
        print()
        detail("then, for example:")
        detail("  ddb-audit callers")
        detail("  ddb-audit callers --table orders --account 111122223333 --region us-east-1")
        detail("  ddb-audit new --since 2024-03-01")
        detail("  ddb-audit stale --days 30")
        detail("Stop it with `make demo-stop`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
