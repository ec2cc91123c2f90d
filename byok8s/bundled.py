"""The workflows shipped inside the package (the repo's `workflows/` folder).

Each bundled workflow is a folder `workflows/NAME/` with a `Snakefile`, its
workflow config `workflow-NAME.json` and example params files `params-*.json`.
They are package data of `byok8s.workflows`, found with importlib.resources so
they work after a plain (non-editable) `pip install`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class BundledWorkflow:
    name: str
    directory: Path
    description: str
    configs: tuple[str, ...]
    params: tuple[str, ...]

    @property
    def snakefile(self) -> Path:
        return self.directory / "Snakefile"


def root() -> Path:
    return Path(str(resources.files("byok8s.workflows")))


def find_file(name: str) -> Path | None:
    """A bundled workflow config or params file by bare name (e.g. `params-blue`)."""
    for workflow in all_workflows():
        for suffix in SUFFIXES:
            candidate = workflow.directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def all_workflows() -> list[BundledWorkflow]:
    found = []
    for directory in sorted(root().iterdir()):
        if not (directory / "Snakefile").is_file():
            continue
        configs = sorted(directory.glob("workflow-*.json"))
        description = ""
        if configs:
            description = json.loads(configs[0].read_text()).get("description", "")
        found.append(
            BundledWorkflow(
                name=directory.name,
                directory=directory,
                description=description,
                configs=tuple(p.stem for p in configs),
                params=tuple(sorted(p.stem for p in directory.glob("params-*.json"))),
            )
        )
    return found


def get(name: str) -> BundledWorkflow | None:
    return next((w for w in all_workflows() if w.name == name), None)
