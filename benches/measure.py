#!/usr/bin/env python3
"""The measurements of `make bench`, in one run, over one corpus.

Usage: measure.py CORPUS_DIR BIN_DIR [--runs N]

BIN_DIR holds `ddb-audit` and `examples/decode_only` (a `--profile bench`
build). Each measure is taken N times (default 3) and the best is kept, as
noise on a shared machine only ever adds time. CPU is user+sys and peak RSS
the maximum resident set, both from /usr/bin/time. With --big DIR, analyze
also reads the one large file in DIR, once, for its peak RSS.
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
    ap.add_argument("--big", help="a folder with one large CloudTrail file: report analyze's peak RSS on it")
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

    # analyze: the whole run, process start to exit. Pinned to one CPU for
    # the per-core figures (it then runs one thread), free for the wall time
    # (one thread per CPU, files shared between them).
    one_cpu = ["taskset", "-c", "0"]
    cmd = [analyze, "analyze", "--format", "json", args.corpus]
    a_wall, a_cpu, a_rss, a_proc = best(args.runs, lambda: timed(one_cpu + cmd))
    reconcile = a_proc.stderr.strip().splitlines()[-1]
    m = re.search(r"records in (\d+)", reconcile)
    if not m or int(m.group(1)) != records:
        sys.exit(f"analyze read a different number of records than the peer: {reconcile}")
    a_rate = records / a_cpu
    print(f"ddb-audit analyze --format json, one CPU: {a_rate:>10,.0f} records/CPU-s "
          f"({a_cpu:.3f} CPU-s, {a_wall:.3f} s wall, peak RSS {a_rss / 1024:.0f} MiB) "
          f"= {a_rate / peer_rate:.1f}x the peer  [target >= 6x]")

    d_wall, d_cpu, d_rss, _ = best(args.runs, lambda: timed(one_cpu + [decode_only] + files))
    print(f"decode only (decode::read_stream, as analyze reads): {d_cpu:.3f} CPU-s, {d_wall:.3f} s wall, "
          f"peak RSS {d_rss / 1024:.0f} MiB; analyze CPU / decode CPU = {a_cpu / d_cpu:.2f}  [target <= 2]")
    s_wall, s_cpu, s_rss, _ = best(args.runs, lambda: timed(one_cpu + [decode_only, "--pushed"] + files))
    print(f"  for reference, pushed in 128 KiB pieces through a StreamDecoder (as s3-ingest reads): "
          f"{s_cpu:.3f} CPU-s; analyze CPU / that = {a_cpu / s_cpu:.2f}")
    w_wall, w_cpu, w_rss, _ = best(args.runs, lambda: timed(one_cpu + [decode_only, "--whole"] + files))
    print(f"  for reference, each file decompressed whole into one buffer (decode::decode): {w_cpu:.3f} CPU-s, "
          f"peak RSS {w_rss / 1024:.0f} MiB; analyze CPU / that = {a_cpu / w_cpu:.2f}")

    p_wall, p_cpu, p_rss, p_proc = best(args.runs, lambda: timed(cmd))
    if p_proc.stderr.strip().splitlines()[-1] != reconcile:
        sys.exit("analyze on all CPUs counted differently from analyze on one")

    def gzip_dc():
        start = time.perf_counter()
        subprocess.run(["gzip", "-dc"] + files, check=True, stdout=subprocess.DEVNULL)
        return (time.perf_counter() - start,)
    (g_wall,) = best(args.runs, gzip_dc)
    print(f"ddb-audit analyze --format json, {os.cpu_count()} CPUs: {p_wall:.3f} s wall "
          f"({p_cpu:.3f} CPU-s, peak RSS {p_rss / 1024:.0f} MiB); gzip -dc > /dev/null: {g_wall:.3f} s wall; "
          f"analyze wall / gzip -dc wall = {p_wall / g_wall:.2f}  [target <= 1]")
    print(f"analyze reconciliation: {reconcile}")

    if args.big:
        big_files = sorted(glob.glob(os.path.join(args.big, "*.json.gz")))
        size = sum(os.path.getsize(f) for f in big_files)
        decoded = subprocess.run([decode_only] + big_files, check=True, capture_output=True, text=True).stdout
        big_json = int(re.search(r"(\d+) bytes decompressed", decoded).group(1))
        cap = ["--max-decompressed-bytes", str(4 << 30)]
        b_wall, b_cpu, b_rss, b_proc = timed(one_cpu + [analyze, "analyze", "--format", "json"] + cap + [args.big])
        b_reconcile = b_proc.stderr.strip().splitlines()[-1]
        n = int(re.search(r"records in (\d+)", b_reconcile).group(1))
        print(f"one large file ({big_json / 2**30:.2f} GiB of JSON, {size / 1e6:.0f} MB gzip, {n} records), "
              f"one CPU: peak RSS {b_rss / 1024:.0f} MiB  [target < 128 MB], {b_cpu:.2f} CPU-s, "
              f"{n / b_cpu:,.0f} records/CPU-s")

if __name__ == "__main__":
    main()
