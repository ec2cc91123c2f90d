"""The Corefile edit of `byok8s fix-dns` and the shipped fixcoredns.yml (the
cluster side is in test_cluster_dns_doctor.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import invoke

from byok8s import dns

ROOT = Path(__file__).resolve().parent.parent

MINIKUBE = """\
.:53 {
    log
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    hosts {
       192.168.49.1 host.minikube.internal
       fallthrough
    }
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""

OLD_PROXY = """\
.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       upstream
       pods insecure
    }
    proxy . /etc/resolv.conf {
       policy sequential
    }
    cache 30
}
"""


def test_the_forward_line_changes_and_everything_else_stays() -> None:
    fixed = dns.fixed_corefile(MINIKUBE)
    assert "    forward . 8.8.8.8 8.8.4.4 {\n       max_concurrent 1000\n    }" in fixed
    assert fixed.replace("8.8.8.8 8.8.4.4", "/etc/resolv.conf") == MINIKUBE
    assert "host.minikube.internal" in fixed  # minikube's hosts block is kept


def test_the_removed_proxy_plugin_becomes_forward_without_its_options() -> None:
    fixed = dns.fixed_corefile(OLD_PROXY, ["1.1.1.1"])
    assert "proxy" not in fixed and "policy sequential" not in fixed
    assert "    forward . 1.1.1.1\n    cache 30\n" in fixed


def test_a_fixed_corefile_does_not_change_again() -> None:
    once = dns.fixed_corefile(MINIKUBE)
    assert dns.fixed_corefile(once) == once


def test_the_diff_shows_only_the_forward_line() -> None:
    text = dns.diff(MINIKUBE, dns.fixed_corefile(MINIKUBE))
    changed = [ln for ln in text.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert changed == ["-    forward . /etc/resolv.conf {", "+    forward . 8.8.8.8 8.8.4.4 {"]


def test_fixcoredns_yml_is_the_same_fix_for_current_coredns() -> None:
    text = (ROOT / "fixcoredns.yml").read_text()
    doc = yaml.safe_load(text)
    assert (doc["kind"], doc["metadata"]) == ("ConfigMap", {"name": "coredns",
                                                           "namespace": "kube-system"})  # fmt: skip
    corefile = doc["data"]["Corefile"]
    assert "proxy" not in corefile and "loop" in corefile.split()
    assert "forward . 8.8.8.8 8.8.4.4 {" in corefile
    broken = corefile.replace("8.8.8.8 8.8.4.4", "/etc/resolv.conf")
    assert dns.fixed_corefile(broken) == corefile
    assert "plugin/loop" in text and "CrashLoopBackOff" in text  # says when it is needed


def test_the_loop_messages_of_old_and_new_coredns_are_recognised() -> None:
    new = '[FATAL] plugin/loop: Loop (127.0.0.1:41343 -> :53) detected for zone ".", see ...'
    old = '[FATAL] plugin/loop: Seen "HINFO IN 9273194449250285441.798654804648663468." more ' \
        "than twice, loop detected"  # fmt: skip
    assert dns.LOOP_RE.search(new) and dns.LOOP_RE.search(old)
    assert not dns.LOOP_RE.search("[INFO] plugin/reload: Running configuration SHA512 = 1a2b")


@pytest.mark.parametrize("bad", ["8.8.8", "dns.google", "8.8.8.8,8.8.4.4"])
def test_a_resolver_that_is_not_an_ip_address_is_a_usage_error(bad: str) -> None:
    result = invoke("fix-dns", "--resolver", bad)
    assert result.exit_code == 2
    assert "is not an IP address" in result.stderr


def test_without_a_cluster_fix_dns_says_so_in_one_line() -> None:
    result = invoke("fix-dns")
    assert result.exit_code == 5
    assert result.stderr.startswith("byok8s: error: no usable kubeconfig")
    assert len(result.stderr.strip().splitlines()) == 1
