#!/usr/bin/env python3
"""Process start to ready, for each function binary: the time from exec to
its first `GET /2018-06-01/runtime/invocation/next` on the Lambda runtime API,
which is when Lambda's init phase ends. The runtime API is played by a
listener on 127.0.0.1 that records that request and never answers it.

    python3 benches/lambda_init.py DIR [--runs N]

DIR holds the binaries (logs-ingest, s3-ingest, notifier), e.g. target/release
after `cargo build --profile bench --bin ...`. Credentials and region come
from the environment as Lambda sets them, so no network is touched. Prints
the median and the spread of N runs per binary.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

FUNCTIONS = ("logs-ingest", "s3-ingest", "notifier")
WAIT_SECONDS = 10


def start_to_ready(binary, runs):
    times = []
    for _ in range(runs):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.settimeout(WAIT_SECONDS)
            port = listener.getsockname()[1]
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
                "AWS_LAMBDA_FUNCTION_NAME": binary.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEINIT00000",
                "AWS_SECRET_ACCESS_KEY": "example",
                "AWS_SESSION_TOKEN": "example",
                "SUMMARY_TABLE": "ddb-audit",
                "TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:ddb-audit",
            }
            started = time.perf_counter()
            proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                conn, _ = listener.accept()
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                ready = time.perf_counter() - started
                conn.close()
            except socket.timeout:
                proc.kill()
                err = proc.communicate(timeout=5)[1].decode(errors="replace")
                sys.exit(f"{binary} did not ask for an invocation within {WAIT_SECONDS} s:\n{err}")
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=5)
            if b"/runtime/invocation/next" not in request.split(b"\r\n", 1)[0]:
                sys.exit(f"{binary}: unexpected first request {request[:80]!r}")
            times.append(ready * 1000)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    for name in FUNCTIONS:
        binary = args.dir / name
        times = start_to_ready(binary, args.runs)
        print(
            f"{name}: start to ready median {statistics.median(times):.1f} ms "
            f"(min {min(times):.1f}, max {max(times):.1f}, {args.runs} runs)"
        )


if __name__ == "__main__":
    main()
