"""Run the selected tests of Snakemake's own suite through byok8s, every way, and
write the results (and, with --readme, the README's conformance table).

    .venv/bin/python test/conformance/run_suite.py                  # all ways, all tests
    .venv/bin/python test/conformance/run_suite.py --ways plain,local,bucket --tests test_params

It starts what the ways need itself: the S3 server and Azurite on this machine,
and the local Kubernetes cluster of test/cluster/ (TEST_CLUSTER_STATE=DIR uses one
already running). Results go to test/conformance/results/ with the commit they
were measured on and whether the tree was clean.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import buckets  # noqa: E402
import runner  # noqa: E402
import suite  # noqa: E402
from ci_subset import AZURE  # noqa: E402

ROOT = HERE.parent.parent
RESULTS = HERE / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- conformance-table -->", "<!-- /conformance-table -->"
KEY, SECRET = "AKIAconformance", "conformance-secret-value-0123456789"
AT_ONCE = 3  # runs at once (each in its own directory, bucket prefix and namespace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ways", default=",".join(runner.WAYS))
    parser.add_argument("--tests", default="", help="comma-separated test names (default: all)")
    parser.add_argument("--subset", choices=["ci"], help="the CI subset (test_conformance.py)")
    parser.add_argument("-o", "--output", type=Path, help="results file (JSON)")
    parser.add_argument("--readme", action="store_true", help="write the README table")
    parser.add_argument("--logs", type=Path, help="write each failed run's stderr to this folder")
    parser.add_argument(
        "--azure-all",
        action="store_true",
        help="every test on Azure too (default: the CI subset's AZURE list)",
    )
    parser.add_argument(
        "--table",
        type=Path,
        metavar="RESULTS",
        help="only make the table of a results file (with --readme: into the README)",
    )
    args = parser.parse_args(argv)
    if args.table:
        data = json.loads(args.table.read_text())
        _write(data, args.readme)
        return 0
    ways = [w for w in args.ways.split(",") if w]
    root = suite.sdist()
    cases = suite.cases(root)
    chosen = [c for c in cases if c.selected]
    if args.subset == "ci":
        from ci_subset import SUBSET

        chosen = [c for c in chosen if c.name in SUBSET]
    if args.tests:
        names = set(args.tests.split(","))
        chosen = [c for c in chosen if c.name in names]
    commit, clean = _commit()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    outcomes = _run_all(chosen, root / "tests", ways, args.azure_all)
    data = {
        "commit": commit, "clean": clean, "snakemake": root.name.split("-", 1)[1],
        "started": started,
        "ways": ways, "selected": len([c for c in cases if c.selected]), "total": len(cases),
        "excluded": Counter(c.reason for c in cases if not c.selected),
        "outcomes": [{k: v for k, v in asdict(o).items() if k != "output"} for o in outcomes],
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = args.output or RESULTS / f"conformance-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(data, indent=1) + "\n")
    _write(data, args.readme)
    print(f"results: {out}")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        for o in outcomes:
            if o.status == "failed":
                (args.logs / f"{o.case}-{o.way}.txt").write_text(o.output)
    return 0


def _write(data: dict, readme: bool) -> None:
    print(table(data))
    if readme:
        text = README.read_text()
        start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
        README.write_text(text[:start] + "\n" + table(data) + "\n" + text[stop:])


def _run_all(
    cases: list[suite.Case], tests: Path, ways: list[str], azure_all: bool = False
) -> list[runner.Outcome]:
    import services

    outcomes: list[runner.Outcome] = []
    cluster = s3 = azurite = None
    try:
        if {"cluster", "azure"} & set(ways):
            import localcluster

            cluster = localcluster.start()
            os.environ["KUBECONFIG"] = str(cluster.kubeconfig)  # byok8s reads it
        host = cluster.gateway if cluster else "127.0.0.1"
        if {"bucket", "plain-bucket", "cluster"} & set(ways):
            s3 = services.start_s3(host=host)
        if "azure" in ways:
            azurite = services.start_azurite(host=host)
        with _workspace() as work:
            for way in ways:
                chosen = [c for c in cases if way != "azure" or azure_all or c.name in AZURE]

                def one(case: suite.Case, way: str = way) -> runner.Outcome:
                    bucket, options = _where(way, case, s3, azurite, cluster)
                    try:
                        return runner.run(case, tests, way, Path(work), bucket, options)
                    finally:
                        if options:
                            _drop_namespace(cluster, options[1])

                with ThreadPoolExecutor(AT_ONCE) as pool:
                    for outcome in pool.map(one, chosen):
                        outcomes.append(outcome)
                        print(f"{outcome.case:45} {way:12} {outcome.status:7} "
                              f"{outcome.seconds:6.1f} s {outcome.reason}", flush=True)  # fmt: skip
    finally:
        for server in (s3, azurite):
            if server is not None:
                server.stop()
        if cluster is not None:
            cluster.stop()
    return outcomes


@contextlib.contextmanager
def _workspace():  # type: ignore[no-untyped-def]
    """A temporary folder for the runs, or BYOK8S_CONFORMANCE_WORK (kept, to look
    into a run afterwards)."""
    kept = os.environ.get("BYOK8S_CONFORMANCE_WORK")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        yield kept
        return
    with tempfile.TemporaryDirectory(prefix="byok8s-conformance-") as work:
        yield work


def _where(way: str, case: suite.Case, s3, azurite, cluster):  # type: ignore[no-untyped-def]
    """The bucket and cluster options of one run (a fresh prefix and namespace)."""
    prefix = f"{case.name}-{uuid.uuid4().hex[:6]}".replace("_", "-")
    options: list[str] = []
    if way in ("cluster", "azure"):
        namespace = _namespace(cluster)
        options = ["-k", namespace, "--container-image", cluster.image]
    if way in ("bucket", "plain-bucket", "cluster"):
        import boto3

        endpoint = f"http://{s3.host}:{s3.port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=KEY, aws_secret_access_key=SECRET)  # fmt: skip
        name = "conformance"
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
        return buckets.S3Bucket(client, name, prefix, endpoint, env), options
    if way == "azure":
        import services
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        url = services.azurite_url(azurite)
        service = BlobServiceClient(
            url,
            credential={
                "account_name": services.AZURITE_ACCOUNT,
                "account_key": services.AZURITE_KEY,
            },
        )
        container = service.get_container_client("conformance")
        with contextlib.suppress(ResourceExistsError):  # the first run made it
            container.create_container()
        env = {"AZ_BLOB_ACCOUNT_URL": url, "AZ_BLOB_CREDENTIAL": services.AZURITE_KEY}
        return buckets.AzureBucket(container, prefix, url, env), options
    return None, options


def _namespace(cluster) -> str:  # type: ignore[no-untyped-def]
    import kubernetes

    name = f"conf-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(cluster.api()).create_namespace({"metadata": {"name": name}})
    return name


def _drop_namespace(cluster, name: str) -> None:  # type: ignore[no-untyped-def]
    import kubernetes

    kubernetes.client.CoreV1Api(cluster.api()).delete_namespace(name)


def _commit() -> tuple[str, bool]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    return git("rev-parse", "HEAD").strip(), not git("status", "--porcelain").strip()


def table(data: dict) -> str:
    """The README's table: per way, how many ran and passed; how many of the tests
    plain Snakemake passes on this machine (no storage) it passes, counting all of
    them and leaving out those that need a shared filesystem (shared_fs.tsv, and
    failing with plain Snakemake on the same storage too); and every failure, with
    its reason."""
    status = {(o["case"], o["way"]): o for o in data["outcomes"]}
    why = suite.read_tsv(suite.SHARED_FS)

    def passed(case: str, way: str) -> bool:
        return (status.get((case, way)) or {}).get("status") == "passed"

    def shared_fs(o: dict) -> bool:
        """A storage way's failure that needs a shared filesystem."""
        same = runner.SAME_STORAGE.get(o["way"], o["way"])
        return (o["status"] == "failed" and o["case"] in why and same != o["way"]
                and same != "plain" and (o["case"], same) in status
                and not passed(o["case"], same))  # fmt: skip

    def share(kept: int, owed: int) -> str:
        return f"{kept} of {owed} ({100 * kept / owed:.1f} %)" if owed else "-"

    lines = [
        f"Snakemake {data['snakemake']}: {data['selected']} of {data['total']} tests apply "
        f"(measured on commit {data['commit'][:12]}{'' if data['clean'] else ', dirty tree'}, "
        f"{data['started']})",
        "",
        "| way | tests | passed | of those plain Snakemake passes | of those, needing no shared "
        "filesystem | needs a shared filesystem | failed | not applicable here |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for way in data["ways"]:
        mine = [o for o in data["outcomes"] if o["way"] == way]
        got = Counter(o["status"] for o in mine)
        needs = sum(1 for o in mine if shared_fs(o))
        whole = apart = "-"
        if way in runner.BASELINE:
            base = runner.BASELINE[way]
            owed = [o for o in mine if passed(o["case"], base) and o["status"] != "n/a"]
            kept = sum(1 for o in owed if o["status"] == "passed")
            whole = share(kept, len(owed))
            apart = share(kept, len(owed) - sum(1 for o in owed if shared_fs(o)))
        lines.append(f"| {way} | {len(mine)} | {got['passed']} | {whole} | {apart} | {needs} | "
                     f"{got['failed'] - needs} | {got['n/a']} |")  # fmt: skip
    failures = [o for o in data["outcomes"] if o["status"] != "passed"]
    if failures:
        lines += ["", "| test | way | result | reason | why |", "|---|---|---|---|---|"]
        for o in failures:
            needs = shared_fs(o)
            result = "needs a shared filesystem" if needs else o["status"]
            reason = re.sub(r"\s+", " ", o["reason"]).replace("|", "\\|")
            lines.append(f"| {o['case']} | {o['way']} | {result} | {reason} | "
                         f"{why[o['case']] if needs else ''} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
