"""`byok8s doctor`: whether a cluster run can work (see byok8s.doctor)."""

from __future__ import annotations

from typing import Any


def main(options: dict[str, Any]) -> int:
    from byok8s import doctor as checks
    from byok8s.config import environ
    from byok8s.output import print_checks

    opts = checks.Options(
        namespace=options["k8s_namespace"],
        bucket=options["bucket"],
        s3_endpoint_url=options["s3_endpoint_url"],
        envvars=options["envvars"],
        container_image=options["container_image"],
        pull_secrets=tuple(options["image_pull_secret"] or ()),
        workflow_config=options["workflow_config"],
        params=options["params"],
        snakefile=options["snakefile"],
    )
    results = checks.run(opts, environ())
    print_checks(results, options["as_json"])
    return int(checks.exit_code(results))
