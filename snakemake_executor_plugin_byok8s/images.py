"""Which image a job runs in: the one choice of the Kubernetes and Azure Batch
executors."""

from __future__ import annotations

from typing import Any

from snakemake_executor_plugin_byok8s import compat, options, status


def job_image(job: Any, given: str | None, default: str, logger: Any, told: set[str]) -> str:
    """The image of a job's pod or task: its rule's `image` in the workflow config,
    else its `container:` directive, else `default` (the job image). A group job's
    rules must agree, as it runs in one container. When the workflow config overrides
    a directive, say so once per rule (`told`), at debug level (--verbose)."""
    label = status.job_label(job)
    declared = {options.image(i, label) for i in compat.container_images(job)}
    if given and declared and declared != {given} and job.name not in told:
        told.add(job.name)
        logger.debug(f"{label}: image {given} from the workflow config, not "
                     f"{', '.join(sorted(declared))} from its container: directive")  # fmt: skip
    if given:
        return given
    if len(declared) > 1:
        raise ValueError(
            f"{label}: its rules name different images ({', '.join(sorted(declared))}), but "
            "a group job runs in one container: give its rules the same container:, or set "
            "one in the workflow config's rules"
        )
    return declared.pop() if declared else default
