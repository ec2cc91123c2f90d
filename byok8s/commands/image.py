"""`byok8s image`: the job image's name for this byok8s and snakemake."""

from __future__ import annotations

from byok8s.errors import ExitCode


def main(repository: str | None) -> int:
    from byok8s.image import REPOSITORY, default_image

    print(default_image(repository or REPOSITORY))
    return int(ExitCode.OK)
