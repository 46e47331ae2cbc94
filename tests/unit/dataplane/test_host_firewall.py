"""A host's own firewall from the IR: the tier walk as chains, the host's addresses as the gate,
peers as sets, and the same rules written for nftables and for iptables."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from ipaddress import ip_address

import pytest
from clusters import Cluster, namespace, pod

from netfence.dataplane.host import Verdict, compile_host
from netfence.dataplane.iptables.render import IptablesError, render_iptables
from netfence.dataplane.nft.host import render_host
from netfence.ir.build import build_ruleset
from netfence.model.endpoints import EndpointId
from netfence.model.ports import Protocol
from netfence.sources.load import load_inventory

Make = Callable[..., Cluster]

SCENARIO = str(resources.files("netfence") / "scenarios" / "whitelist")
VM = EndpointId("ext/vm")


def vm(addresses: str = "[192.0.2.10]", labels: str = "{app: lb}") -> str:
    return f"""
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {{name: vm, labels: {labels}}}
spec:
  addresses: {addresses}
  ports: [{{name: http, port: 8080}}]
"""


def gnp(name: str, body: str) -> str:
    head = f"apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n"
    return head + body


def shop() -> list[object]:
    return [
        namespace("shop"),
        pod("shop", "web", {"app": "web"}, "10.1.0.1", ports=(("http", 8000, "TCP"),)),
        pod("shop", "db", {"app": "db"}, "10.1.0.2", ports=(("sql", 5432, "TCP"),)),
    ]


def test_whitelist_scenario_vm_allows_clients_on_80_and_reaches_wordpress_at_the_node_port() -> None:
    ruleset = build_ruleset(load_inventory([SCENARIO]).inventory)
    assert render_host(compile_host(ruleset, EndpointId("ext/haproxy"))).render() == (
        "table inet netfence {\n"
        "\tset eg_4dc2a53b6d { type ipv4_addr; flags interval; elements = { 172.18.221.11 }; }\n"
        "\tset local_v4 { type ipv4_addr; flags interval; elements = { 172.18.221.1 }; }\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\tct state established,related accept\n"
        "\t\tct state invalid drop\n"
        '\t\tiifname "lo" accept\n'
        "\t\tip daddr @local_v4 jump in_t0\n"
        "\t}\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t\tct state established,related accept\n"
        "\t\tct state invalid drop\n"
        '\t\toifname "lo" accept\n'
        "\t\tip saddr @local_v4 jump eg_t0\n"
        "\t}\n"
        "\tchain in_t0 {\n"
        "\t\tmeta l4proto tcp th dport { 80 } counter accept"
        ' comment "GlobalNetworkPolicy wordpress-whitelist ingress[0]"\n'
        '\t\tcounter drop comment "default: isolated, no rule allowed"\n'
        "\t}\n"
        "\tchain eg_t0 {\n"
        "\t\tip daddr @eg_4dc2a53b6d meta l4proto tcp th dport { 30358 } counter accept"
        ' comment "GlobalNetworkPolicy wordpress-whitelist egress[0]"\n'
        '\t\tcounter drop comment "default: isolated, no rule allowed"\n'
        "\t}\n"
        "}\n"
    )
    rules = render_iptables(compile_host(ruleset, EndpointId("ext/haproxy")))
    assert rules.ipset.splitlines()[:6] == [
        "create netfence-eg-4dc2a53b6d hash:net family inet -exist",
        "create netfence-eg-4dc2a53b6d-new hash:net family inet -exist",
        "flush netfence-eg-4dc2a53b6d-new",
        "add netfence-eg-4dc2a53b6d-new 172.18.221.11/32",
        "swap netfence-eg-4dc2a53b6d-new netfence-eg-4dc2a53b6d",
        "destroy netfence-eg-4dc2a53b6d-new",
    ]
    lines = rules.iptables.splitlines()
    assert "-A NETFENCE-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" in lines
    assert "-A NETFENCE-OUTPUT -m set --match-set netfence-local-v4 src -j NETFENCE-EG-T0" in lines
    assert (
        "-A NETFENCE-EG-T0 -p tcp -m set --match-set netfence-eg-4dc2a53b6d dst -m multiport --dports 30358"
        ' -m comment --comment "GlobalNetworkPolicy wordpress-whitelist egress[0]" -j ACCEPT'
    ) in lines
    assert rules.sets == ("netfence-eg-4dc2a53b6d", "netfence-local-v4")


def test_host_no_policy_selects_gets_only_the_stateful_hooks(cluster: Make) -> None:
    c = cluster(*shop(), vm())
    firewall = compile_host(c.ruleset, VM)
    assert (firewall.ingress, firewall.egress, firewall.chains) == (None, None, ())
    assert "jump" not in render_host(firewall).render()


def test_pass_goes_to_the_next_tier_and_the_end_applies_the_default(cluster: Make) -> None:
    tier = (
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\n"
        "spec: {order: 100, defaultAction: Pass}\n"
    )
    first = gnp("first", "  tier: security\n  selector: app == 'lb'\n  ingress:\n  - action: Log\n  - action: Pass\n")
    c = cluster(*shop(), vm(), tier, first)
    firewall = compile_host(c.ruleset, VM)
    (chain, end) = firewall.chains
    assert [(r.verdict, r.target) for r in chain.rules] == [
        (Verdict.LOG, None),
        (Verdict.GOTO, "in_end"),
        (Verdict.GOTO, "in_end"),
    ]
    assert end.name == "in_end" and [r.verdict for r in end.rules] == [Verdict.ACCEPT]
    text = render_host(firewall).render()
    assert '\t\tcounter log prefix "netfence in " comment "GlobalNetworkPolicy first ingress[0]"\n' in text
    assert '\t\tcounter goto in_end comment "security: no rule decided"\n' in text
    assert "-g NETFENCE-IN-END" in render_iptables(firewall).iptables


def test_rules_for_other_subjects_are_left_out_and_partial_local_matches_keep_a_local_set(cluster: Make) -> None:
    policy = gnp(
        "split",
        "  selector: app in {'lb', 'web'}\n  ingress:\n"
        "  - action: Allow\n    destination: {selector: app == 'web'}\n"
        "  - action: Allow\n    protocol: TCP\n    destination: {nets: [192.0.2.10/32], ports: [22]}\n",
    )
    c = cluster(*shop(), vm("[192.0.2.10, 192.0.2.11]"), policy)
    firewall = compile_host(c.ruleset, VM)
    (chain,) = firewall.chains
    (rule, end) = chain.rules
    assert rule.note == "GlobalNetworkPolicy split ingress[1]"
    assert rule.match.local is not None and rule.match.local.spans == ((int(0xC000020A), int(0xC000020A)),)
    assert end.verdict is Verdict.DROP


def test_egress_named_ports_resolve_on_each_destination(cluster: Make) -> None:
    policy = gnp(
        "named",
        "  selector: app == 'lb'\n  egress:\n  - action: Allow\n    destination: {ports: [http, sql]}\n",
    )
    c = cluster(*shop(), vm(), policy)
    text = render_host(compile_host(c.ruleset, VM)).render()
    assert "th dport { 8000 }" in text and "th dport { 5432 }" in text and "th dport { 8080 }" in text


def test_icmp_type_and_code_negation_is_two_nft_rules_and_one_iptables_rule(cluster: Make) -> None:
    policy = gnp(
        "icmp",
        "  selector: app == 'lb'\n  ingress:\n  - action: Allow\n    protocol: ICMP\n    notICMP: {type: 8, code: 0}\n",
    )
    c = cluster(*shop(), vm(), policy)
    firewall = compile_host(c.ruleset, VM)
    text = render_host(firewall).render()
    assert "meta nfproto ipv4 meta l4proto icmp icmp type != 8 counter accept" in text
    assert "meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code != 0 counter accept" in text
    rules = render_iptables(firewall)
    assert "-A NETFENCE-IN-T0 -p icmp -m icmp ! --icmp-type 8/0" in rules.iptables
    assert "icmp" not in rules.ip6tables.replace("NETFENCE", "")


def test_many_ports_are_split_into_multiport_matches_of_fifteen(cluster: Make) -> None:
    ports = ", ".join(str(p) for p in range(1000, 1020))
    policy = gnp(
        "many",
        f"  selector: app == 'lb'\n  ingress:\n  - action: Allow\n    protocol: UDP\n"
        f"    destination: {{ports: [{ports}]}}\n    source: {{notPorts: ['2000:2010']}}\n",
    )
    c = cluster(*shop(), vm(), policy)
    lines = [line for line in render_iptables(compile_host(c.ruleset, VM)).iptables.splitlines() if "--dports" in line]
    assert len(lines) == 2
    assert "--dports 1000,1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,1011,1012,1013,1014 " in lines[0]
    assert all("-m multiport ! --sports 2000:2010" in line for line in lines)


def test_negated_named_ports_without_a_protocol_exclude_only_their_own_protocol(cluster: Make) -> None:
    policy = gnp(
        "noproto",
        "  selector: app == 'lb'\n  ingress:\n  - action: Allow\n    destination: {notPorts: [http]}\n",
    )
    c = cluster(*shop(), vm(), policy)
    firewall = compile_host(c.ruleset, VM)
    text = render_host(firewall).render()
    assert "meta l4proto tcp th dport != { 8080 } counter accept" in text
    assert "meta l4proto != tcp counter accept" in text
    lines = render_iptables(firewall).iptables
    assert "-A NETFENCE-IN-T0 -p tcp -m multiport ! --dports 8080 " in lines
    assert "-A NETFENCE-IN-T0 ! -p tcp " in lines


def test_excluding_several_protocols_is_refused_for_iptables_only(cluster: Make) -> None:
    both = "ports: [{name: http, port: 8080}, {name: dns, port: 53, protocol: UDP}]"
    host = vm().replace("ports: [{name: http, port: 8080}]", both)
    policy = gnp(
        "noproto",
        "  selector: app == 'lb'\n  ingress:\n  - action: Allow\n    destination: {notPorts: [http, dns]}\n",
    )
    c = cluster(*shop(), host, policy)
    firewall = compile_host(c.ruleset, VM)
    assert "meta l4proto != { tcp, udp } counter accept" in render_host(firewall).render()
    with pytest.raises(IptablesError, match="use -o nft"):
        render_iptables(firewall)


def test_ipv6_addresses_gate_and_sets_go_to_ip6tables(cluster: Make) -> None:
    policy = gnp(
        "v6",
        "  selector: app == 'lb'\n  ingress:\n  - action: Allow\n    source: {nets: ['2001:db8::/64']}\n",
    )
    c = cluster(*shop(), vm('[192.0.2.10, "2001:db8::10"]'), policy)
    firewall = compile_host(c.ruleset, VM)
    text = render_host(firewall).render()
    assert "ip6 daddr @local_v6 jump in_t0" in text and "ip daddr @local_v4 jump in_t0" in text
    rules = render_iptables(firewall)
    assert "create netfence-local-v6 hash:net family inet6 -exist" in rules.ipset
    assert "add netfence-in-" in rules.ipset and "2001:db8::/64" in rules.ipset
    assert "--match-set netfence-in-" in rules.ip6tables and "--match-set netfence-in-" not in rules.iptables


def test_named_source_ports_resolve_on_each_source_on_ingress_and_on_the_host_on_egress(cluster: Make) -> None:
    policy = gnp(
        "sources",
        "  selector: app == 'lb'\n  types: [Ingress, Egress]\n"
        "  ingress:\n  - action: Allow\n    protocol: TCP\n    source: {ports: [http, sql]}\n"
        "  egress:\n  - action: Allow\n    protocol: TCP\n    source: {notPorts: [http]}\n",
    )
    c = cluster(*shop(), vm(), policy)
    firewall = compile_host(c.ruleset, VM)
    incoming = {(r.match.remote.spans if r.match.remote else None, r.match.sports) for r in firewall.chains[0].rules[:-1]}
    web, db, me = (int(ip_address(a)) for a in ("10.1.0.1", "10.1.0.2", "192.0.2.10"))
    # Every source that declares a name, the host itself included (it declares http: 8080).
    assert incoming == {(((web, web),), ((8000, 8000),)), (((db, db),), ((5432, 5432),)), (((me, me),), ((8080, 8080),))}
    outgoing = firewall.chains[1].rules[0].match
    assert (outgoing.protocol, outgoing.not_sports) == (Protocol.TCP, ((8080, 8080),))
    assert "th sport != { 8080-8080 }" in render_host(firewall).render()  # a range: see nft/compile.py port_range
