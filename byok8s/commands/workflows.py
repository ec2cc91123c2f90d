"""`byok8s workflows`: the bundled workflows and their example files."""

from __future__ import annotations

from byok8s.errors import ExitCode


def main() -> int:
    from byok8s import bundled

    for wf in bundled.all_workflows():
        print(f"{wf.name}\t{wf.description}")
        for name in wf.configs:
            print(f"  config  {name}")
        for name in wf.params:
            print(f"  params  {name}")
    return int(ExitCode.OK)
