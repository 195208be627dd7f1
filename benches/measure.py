#!/usr/bin/env python3
"""The measurements of `make bench`, in one run, over one corpus.

Usage: measure.py CORPUS_DIR BIN_DIR [--runs N]

BIN_DIR holds `ddb-audit` and `examples/decode_only` (a `--profile bench`
build). Each measure is taken N times (default 3) and the best is kept, as
noise on a shared machine only ever adds time. CPU is user+sys and peak RSS
the maximum resident set, both from /usr/bin/time.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"


def timed(cmd, stdout=subprocess.DEVNULL):
    """Runs cmd under /usr/bin/time: (wall s, cpu s, peak RSS KiB, stdout)."""
    with tempfile.NamedTemporaryFile("r") as report:
        proc = subprocess.run([TIME, "-o", report.name, "-f", "%e %U %S %M"] + cmd,
                              stdout=stdout, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
        wall, user, sys_, rss = report.read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss), proc


def best(runs, fn):
    results = [fn() for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("bin_dir")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.corpus, "*.json.gz")))
    if not files:
        sys.exit(f"no *.json.gz under {args.corpus}")
    analyze = os.path.join(args.bin_dir, "ddb-audit")
    decode_only = os.path.join(args.bin_dir, "examples", "decode_only")
    compressed = sum(os.path.getsize(f) for f in files)
    print(f"corpus: {len(files)} files, {compressed / 1e6:.1f} MB gzip, in {args.corpus}; "
          f"{os.cpu_count()} CPU(s); best of {args.runs}")

    # The Python peer times itself (process_time), without interpreter start-up.
    peer_runs = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "python_peer.py")] + files,
                             check=True, capture_output=True, text=True).stdout
        peer_runs.append(dict(kv.split("=") for kv in out.split()))
    peer = max(peer_runs, key=lambda r: float(r["records_per_cpu_s"]))
    records = int(peer["records"])
    peer_rate = float(peer["records_per_cpu_s"])
    print(f"python peer (gzip + json.load):  {peer_rate:>10,.0f} records/CPU-s "
          f"({records} records in {float(peer['cpu_s']):.2f} CPU-s)")

    # analyze: the whole run, process start to exit, one thread.
    a_wall, a_cpu, a_rss, a_proc = best(args.runs, lambda: timed([analyze, "analyze", "--format", "json", args.corpus]))
    reconcile = a_proc.stderr.strip().splitlines()[-1]
    m = re.search(r"records in (\d+)", reconcile)
    if not m or int(m.group(1)) != records:
        sys.exit(f"analyze read a different number of records than the peer: {reconcile}")
    a_rate = records / a_cpu
    print(f"ddb-audit analyze --format json: {a_rate:>10,.0f} records/CPU-s "
          f"({a_cpu:.2f} CPU-s, {a_wall:.2f} s wall, peak RSS {a_rss / 1024:.0f} MiB) "
          f"= {a_rate / peer_rate:.1f}x the peer  [target >= 6x]")

    d_wall, d_cpu, d_rss, _ = best(args.runs, lambda: timed([decode_only] + files))
    print(f"decode only (decode::decode):    {d_cpu:.2f} CPU-s, {d_wall:.2f} s wall, peak RSS {d_rss / 1024:.0f} MiB; "
          f"analyze CPU / decode CPU = {a_cpu / d_cpu:.2f}  [target <= 2]")

    def gzip_dc():
        start = time.perf_counter()
        subprocess.run(["gzip", "-dc"] + files, check=True, stdout=subprocess.DEVNULL)
        return (time.perf_counter() - start,)
    (g_wall,) = best(args.runs, gzip_dc)
    print(f"gzip -dc > /dev/null:            {g_wall:.2f} s wall; analyze wall / gzip -dc wall = "
          f"{a_wall / g_wall:.2f}  [target <= 1]")
    largest = max(os.path.getsize(f) for f in files)
    print(f"peak RSS: analyze {a_rss / 1024:.0f} MiB for files of ~{largest / 1e6:.1f} MB gzip "
          f"(each file is decompressed whole before it is parsed, so RSS grows with file size)  "
          f"[target: independent of file size]")
    print(f"analyze reconciliation: {reconcile}")


if __name__ == "__main__":
    main()
