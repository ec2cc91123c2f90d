"""`byok8s fix-dns`: CoreDNS forwarding to real resolvers (see byok8s.dns)."""

from __future__ import annotations

from byok8s.errors import ExitCode


def main(resolvers: tuple[str, ...], dry_run: bool, force: bool, timeout: float) -> int:
    from byok8s import dns

    dns.fix(resolvers or dns.DEFAULT_RESOLVERS, dry_run=dry_run, force=force, timeout=timeout)
    return int(ExitCode.OK)
