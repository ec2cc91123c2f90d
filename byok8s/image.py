"""The job image: what every job pod runs (Dockerfile at the repository root).

Its tag names both byok8s's and snakemake's versions, so the default image always
matches the snakemake installed here (the pods' Snakemake must be the same)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

REPOSITORY = "ghcr.io/byok8s/byok8s-job"


def tag() -> str:
    from byok8s import __version__

    try:
        snakemake = version("snakemake")
    except PackageNotFoundError:  # pragma: no cover - snakemake is a dependency
        snakemake = "unknown"
    return f"{__version__}-snakemake{snakemake}"


def default_image(repository: str = REPOSITORY) -> str:
    return f"{repository}:{tag()}"
