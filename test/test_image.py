"""The job image: its default name follows the installed versions, and the
Dockerfile builds what the test image has."""

from __future__ import annotations

import configparser
import re
from importlib.metadata import version
from pathlib import Path

from helpers import invoke
from test_config import given

from byok8s import __version__, config

ROOT = Path(__file__).resolve().parent.parent


def test_the_default_image_matches_the_installed_snakemake(workdir: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    cfg = config.resolve(given(bucket=("s3://bucket", config.CLI)), env)
    assert cfg.executor == "kubernetes"
    expected = f"ghcr.io/byok8s/byok8s-job:{__version__}-snakemake{version('snakemake')}"
    assert cfg.container_image == expected
    assert "snakemake" in cfg.sources["container_image"]
    chosen = config.resolve(
        given(bucket=("s3://bucket", config.CLI), container_image=("reg/img:1", config.CLI)), env
    )
    assert chosen.container_image == "reg/img:1"
    assert config.resolve(given(), {}).container_image is None  # local runs use none


def test_byok8s_image_prints_the_name_to_build_and_push() -> None:
    tag = f"{__version__}-snakemake{version('snakemake')}"
    assert invoke("image").stdout == f"ghcr.io/byok8s/byok8s-job:{tag}\n"
    assert invoke("image", "--repository", "r.io/x").stdout == f"r.io/x:{tag}\n"


def test_the_dockerfile_installs_every_package_of_the_distribution() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    packages = setup["options"]["packages"].split()
    top_dirs = {p.split(".")[0] for p in packages} - {"byok8s"} | {"byok8s", "workflows"}
    copied = set(re.findall(r"^COPY (\S+) /src/", dockerfile, re.M))
    assert top_dirs <= copied, top_dirs - copied
    # Snakemake pinned to the caller's version, no install at job start, /workdir open.
    assert "snakemake==${SNAKEMAKE_VERSION}" in dockerfile
    assert "ENV PATH=/opt/byok8s/bin:" in dockerfile
    assert "chmod 1777 /workdir" in dockerfile
