"""Where byok8s's main process spends its CPU in one run of N trivial jobs: py-spy
samples it (50 a second, without stopping it) on the local cluster with the bench's
S3 server, and the functions that hold the largest shares of the samples are
printed. A diagnosis, not a figure of the README's table: sampling slows the run.

    pip install py-spy   # anywhere; give its path with --py-spy
    TEST_CLUSTER_STATE=/tmp/byok8s-bench .venv/bin/python bench/sample.py --jobs 100
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "test"), str(ROOT / "bench")]
import provenance  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="trivial jobs in the run")
    parser.add_argument("--in-flight", type=int, default=50, help="byok8s --jobs")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--raw", default="/tmp/byok8s-sample.txt", help="py-spy's samples")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--idle", action="store_true",
                        help="sample waiting threads too: where the wall time goes")  # fmt: skip
    args = parser.parse_args()
    import localcluster
    import services
    from bench_ways import Bench, require_current_image

    cluster = localcluster.start()
    require_current_image(cluster)
    s3 = services.start_s3(host=cluster.gateway)
    bench = Bench(cluster, s3, Path(sys.executable).parent)
    try:
        bench.prepare(["byok8s"])
        spy = threading.Thread(target=record, args=(args.py_spy, args.raw, args.idle))
        spy.start()
        run = bench.trivial("byok8s", args.jobs, args.in_flight)
        spy.join()
    finally:
        bench.close()
        s3.stop()
        cluster.stop()
    head, clean = provenance.commit()
    print(f"commit {provenance.described(head, clean)}: {args.jobs} jobs, --jobs "
          f"{args.in_flight}: {run['seconds']:.1f} s, main-process CPU "
          f"{run['cpu_s']:.1f} s")  # fmt: skip
    total, shares = inclusive(Path(args.raw))
    print(f"{total} samples; share of them in each function (with what it called):")
    for name, count in shares.most_common(args.top):
        print(f"{100 * count / total:5.1f} %  {name}")
    return 0


def record(py_spy: str, raw: str, idle: bool = False) -> None:
    """py-spy on the run's main process, from its start to its end (with `idle`,
    threads that wait too)."""
    while True:
        found = subprocess.run(["pgrep", "-f", "bin/byok8s wf.json"], capture_output=True,
                               text=True).stdout.split()  # fmt: skip
        if found:
            subprocess.run([py_spy, "record", "-p", found[0], "-r", "50", "-f", "raw",
                            "-o", raw, "--nonblocking", *(["--idle"] if idle else [])],
                           check=True)  # fmt: skip
            return
        time.sleep(0.05)


def inclusive(raw: Path) -> tuple[int, Counter[str]]:
    """Samples in all, and for each function (name and file) the samples whose stack
    holds it."""
    total, shares = 0, Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        names = set()
        for frame in stack.split(";"):
            function, _, where = frame.partition(" (")
            names.add(f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})")
        for name in names:
            shares[name] += int(count)
    return total, shares


if __name__ == "__main__":
    sys.exit(main())
