"""suggest: workloads and their selectors, flow records and conntrack entries, the policies
written from them and the analyzer's check of those policies."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from suggest_shop import CLUSTER, GENERALIZED, HTTP, OBSERVED, expected_allowed

from netfence.analysis.matrix import compute_matrix
from netfence.analysis.suggest import SuggestKind, Suggestion, suggest
from netfence.analysis.suggest.build import exact_networks
from netfence.analysis.suggest.check import check, suggested_ruleset
from netfence.analysis.suggest.flows import FlowRecord, parse_conntrack_line, read_flow_text, record_lines
from netfence.analysis.suggest.workloads import exact_selector, group_workloads
from netfence.errors import InputErrors, Location
from netfence.ir.types import EndpointKind
from netfence.model.endpoints import Pod
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels, LabelSelector, Operator, Requirement
from netfence.model.policies import Direction, IPBlock, NetworkPolicy, Peer, PolicyPort, PolicyRule
from netfence.model.ports import FlowPort, Protocol
from netfence.output.suggest import write_suggestion
from netfence.sources.load import load_inventory

WHERE = Location("flows.jsonl", 1)


@pytest.fixture
def shop(tmp_path: Path) -> Inventory:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    return load_inventory([str(path)]).inventory


def records(*flows: tuple[str, str, FlowPort]) -> list[tuple[FlowRecord, Location]]:
    return [(FlowRecord(s, d, p), Location("flows.jsonl", i + 1)) for i, (s, d, p) in enumerate(flows)]


def pod(namespace: str, name: str, labels: dict[str, str], ip: str) -> Pod:
    return Pod(namespace, name, Labels(labels), (ip_address(ip),))


def allowed_pairs(inventory: Inventory, suggestion: Suggestion) -> set[tuple[str, str, FlowPort]]:
    """Flows between two different pods the suggestion allows, on the observed ports."""
    ruleset = suggested_ruleset(inventory, suggestion.policies, suggestion.calico_policies)
    ports = sorted({f.port for f in suggestion.flows}, key=lambda p: p.sort_key)
    pods = [e for e in ruleset.endpoints if e.kind is EndpointKind.POD]
    matrix = compute_matrix(ruleset, ports, pods)
    return {
        (a.id, b.id, port)
        for p, port in enumerate(ports)
        for i, a in enumerate(pods)
        for j, b in enumerate(pods)
        if i != j and matrix.allowed[p, i, j]
    }


# --- workloads and selectors --------------------------------------------------------------------


def test_replicas_differing_only_in_per_pod_labels_form_one_workload(shop: Inventory) -> None:
    workloads = {w.id: w.pods for w in group_workloads(shop.pods)}
    assert workloads == {
        "shop/api": ("shop/api-0",),
        "shop/db-backend": ("shop/db-0",),
        "shop/db-cache": ("shop/cache",),
        "shop/web": ("shop/web-5d8f7-a1", "shop/web-5d8f7-b2"),
        "shop/web-canary": ("shop/web-canary",),
        "tools/toolbox": ("tools/toolbox",),
    }


def test_selector_adds_labels_until_no_look_alike_workload_matches(shop: Inventory) -> None:
    selectors = {w.id: str(w.selector) for w in group_workloads(shop.pods)}
    assert selectors["shop/db-backend"] == "app=db, tier=backend"
    assert selectors["shop/api"] == "app=api"


def test_a_workload_whose_labels_another_carries_too_is_told_apart_by_does_not_exist(shop: Inventory) -> None:
    selectors = {w.id: w.selector for w in group_workloads(shop.pods)}
    assert selectors["shop/web"] == LabelSelector(
        (Requirement("app", Operator.IN, ("web",)), Requirement("track", Operator.DOES_NOT_EXIST))
    )
    assert str(selectors["shop/web-canary"]) == "app=web, track=canary"


def test_selector_prefers_application_keys_and_uses_version_keys_last() -> None:
    own = Labels({"version": "1.2", "team": "x", "app": "web"})
    assert str(exact_selector(own, [Labels({"app": "api", "team": "x", "version": "1.2"})])) == "app=web"
    # Only the version tells these apart: then it is used.
    assert str(exact_selector(own, [Labels({"version": "1.3", "team": "x", "app": "web"})])) == "app=web, version=1.2"


def test_unlabelled_pods_are_selected_by_the_absence_of_other_workloads_keys() -> None:
    selector = exact_selector(Labels(), [Labels({"app": "web"}), Labels({"tier": "db"})])
    assert selector == LabelSelector((Requirement("app", Operator.DOES_NOT_EXIST), Requirement("tier", Operator.DOES_NOT_EXIST)))
    assert exact_selector(Labels(), []) == LabelSelector()


def test_ignored_label_makes_pods_that_differ_only_in_it_replicas() -> None:
    pods = [pod("ns", "a", {"app": "x", "shard": "1"}, "10.0.0.1"), pod("ns", "b", {"app": "x", "shard": "2"}, "10.0.0.2")]
    assert len(group_workloads(pods)) == 2
    (one,) = group_workloads(pods, ["shard"])
    assert one.pods == ("ns/a", "ns/b") and str(one.selector) == "app=x"


label_sets = st.lists(
    st.dictionaries(st.sampled_from(["app", "tier", "version", "team", "track"]), st.sampled_from(["a", "b", "c"]), max_size=4),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(label_sets)
def test_each_workload_selector_matches_its_pods_and_no_other_pod_of_the_namespace(sets: list[dict[str, str]]) -> None:
    pods = [pod("ns", f"p{i}", labels, f"10.0.0.{i + 1}") for i, labels in enumerate(sets)]
    for workload in group_workloads(pods):
        matched = {p.id for p in pods if workload.selector.matches(p.labels)}
        assert matched == set(workload.pods)
        assert workload.selector.requirements or not any(p.labels for p in pods)


# --- flow records -------------------------------------------------------------------------------


def test_json_flow_lines_are_read_with_tcp_by_default_and_icmp_without_port() -> None:
    text = (
        '{"src": "shop/api-0", "dst": "shop/db-0", "port": 5432}\n\n'
        '{"src": "10.0.0.1", "dst": "ext/lb", "port": 53, "protocol": "udp"}\n'
        '{"src": "tools/toolbox", "dst": "shop/db-0", "protocol": "ICMP"}\n'
    )
    read = read_flow_text(text, "flows.jsonl")
    assert [r for r, _ in read.records] == [
        FlowRecord("shop/api-0", "shop/db-0", FlowPort(Protocol.TCP, 5432)),
        FlowRecord("10.0.0.1", "ext/lb", FlowPort(Protocol.UDP, 53)),
        FlowRecord("tools/toolbox", "shop/db-0", FlowPort(Protocol.ICMP, None)),
    ]
    assert [str(where) for _, where in read.records] == ["flows.jsonl:1", "flows.jsonl:3", "flows.jsonl:4"]
    assert read_flow_text(record_lines(r for r, _ in read.records), "again").records[0][0] == read.records[0][0]


def test_every_malformed_flow_line_is_reported_with_its_line_and_field() -> None:
    text = "\n".join(
        [
            '{"src": "shop/api-0", "dst": "shop/db-0", "port": 70000}',
            '{"src": "shop/api-0", "dest": "shop/db-0", "port": 80}',
            '{"src": "shop/api-0", "dst": "shop/db-0", "port": 80, "protocol": "GRE"}',
            '{"src": "shop/api-0", "dst": "shop/db-0", "port": 80, "protocol": "ICMP"}',
            '{"src": "api-0", "dst": "shop/db-0", "port": 80}',
            '{"src": "shop/api-0", "dst": "shop/db-0", "port": "80"}',
            "{not json",
        ]
    )
    with pytest.raises(InputErrors) as caught:
        read_flow_text(text, "flows.jsonl")
    assert str(caught.value).splitlines() == [
        "flows.jsonl:1: port: expected a port number 1-65535, got 70000",
        "flows.jsonl:2: unknown field 'dest'; expected src, dst, port, protocol",
        "flows.jsonl:3: protocol: expected TCP, UDP, SCTP or ICMP, got 'GRE'",
        "flows.jsonl:4: port: expected no port with ICMP (an echo request), got 80",
        "flows.jsonl:5: src: expected namespace/pod, ext/NAME or an IP address, got 'api-0'",
        "flows.jsonl:6: port: expected a port number 1-65535, got '80'",
        "flows.jsonl:7: expected a JSON object (one flow per line), got invalid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ]


# --- conntrack ----------------------------------------------------------------------------------

# pod 10.60.1.21 -> ClusterIP 10.43.0.5:5432, DNATed to the backend 10.60.2.31:5432.
DNAT = (
    "ipv4     2 tcp      6 431999 ESTABLISHED src=10.60.1.21 dst=10.43.0.5 sport=40112 dport=5432 "
    "src=10.60.2.31 dst=10.60.1.21 sport=5432 dport=40112 [ASSURED] mark=0 use=1 id=3464763667"
)


def test_a_conntrack_entry_is_the_flow_the_destination_saw_after_dnat() -> None:
    entry = parse_conntrack_line(DNAT)
    assert entry is not None and entry.id == "3464763667" and entry.answered
    assert entry.flow() == FlowRecord("10.60.1.21", "10.60.2.31", FlowPort(Protocol.TCP, 5432))


def test_a_conntrack_entry_after_snat_has_the_address_the_destination_saw_as_source() -> None:
    # A client outside reaches a NodePort; kube-proxy masquerades it to the node's 10.0.0.2.
    line = (
        "tcp      6 117 TIME_WAIT src=203.0.113.9 dst=10.0.0.2 sport=51000 dport=30080 "
        "src=10.60.1.11 dst=10.0.0.2 sport=80 dport=51000 [ASSURED] mark=0 use=1"
    )
    entry = parse_conntrack_line(line)
    assert entry is not None and entry.flow() == FlowRecord("10.0.0.2", "10.60.1.11", HTTP)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (
            "udp      17 28 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=53 [UNREPLIED] "
            "src=10.0.0.2 dst=10.0.0.1 sport=53 dport=5000 mark=0 use=1",
            "never answered",
        ),
        (
            "tcp      6 118 SYN_RECV src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=80 "
            "src=10.0.0.2 dst=10.0.0.1 sport=80 dport=5000 mark=0 use=1",
            "TCP handshake not completed",
        ),
        (
            "icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=13 code=0 id=7 src=10.0.0.2 dst=10.0.0.1 type=14 code=0 id=7 mark=0 use=1",
            "ICMP other than an echo request",
        ),
        ("gre      47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0 mark=0 use=1", "protocol gre is not recorded"),
    ],
)
def test_conntrack_entries_that_are_not_answered_flows_say_why(line: str, why: str) -> None:
    entry = parse_conntrack_line(line)
    assert entry is not None and entry.flow() == why


def test_conntrack_icmp_echo_events_and_ids_are_read_apart_from_the_echo_identifier() -> None:
    line = (
        "[UPDATE] ipv4     2 icmp     1 30 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=77 "
        "src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=77 mark=0 use=1 id=99123"
    )
    entry = parse_conntrack_line(line)
    assert entry is not None and entry.id == "99123" and entry.reply["src"] == "10.0.0.2"
    assert entry.flow() == FlowRecord("10.0.0.1", "10.0.0.2", FlowPort(Protocol.ICMP, None))


def test_conntrack_output_is_read_with_its_summary_and_skipped_entries_counted() -> None:
    unreplied = "udp      17 28 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=53 dport=5000"
    text = f"{DNAT}\n{unreplied}\nconntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.\n"
    read = read_flow_text(text, "ct.txt")
    assert [(str(r), str(w)) for r, w in read.records] == [("10.60.1.21 -> 10.60.2.31 TCP/5432", "ct.txt:1")]
    assert read.skipped == ("ct.txt: 1 conntrack entry skipped: never answered",)
    with pytest.raises(InputErrors, match=r"ct.txt:2: expected a conntrack entry .*: expected an original and a reply tuple"):
        read_flow_text(f"{DNAT}\ntcp 6 10 ESTABLISHED src=10.0.0.1 dst=10.0.0.2\n", "ct.txt")


# --- policies -----------------------------------------------------------------------------------


def test_shop_suggestion_allows_the_observed_flows_and_their_replicas_and_nothing_else(shop: Inventory) -> None:
    suggestion = suggest(shop, records(*OBSERVED), egress=True)
    assert suggestion.check.denied == ()
    pod_flows = {f for f in expected_allowed() if not f[0].startswith("ext/") and not f[1].startswith("ext/")}
    assert allowed_pairs(shop, suggestion) == pod_flows
    assert suggestion.check.extra == [f for f in sorted(GENERALIZED) if not f[0].startswith("ext/")]
    assert suggestion.check.unexpected == ()
    (generalization,) = suggestion.check.generalized
    assert (generalization.source, generalization.destination, generalization.port) == ("tools/toolbox", "shop/web", HTTP)
    assert generalization.pairs == (("tools/toolbox", "shop/web-5d8f7-b2"),)
    assert generalization.like.destination.id == "shop/web-5d8f7-a1"  # type: ignore[union-attr]


def test_one_policy_per_workload_and_direction_with_a_rule_per_peer(shop: Inventory) -> None:
    suggestion = suggest(shop, records(*OBSERVED), egress=True)
    names = [(p.namespace, p.name) for p in suggestion.policies]
    assert names == [
        ("shop", "netfence-api-ingress"),
        ("shop", "netfence-api-egress"),
        ("shop", "netfence-db-backend-ingress"),
        ("shop", "netfence-db-backend-egress"),
        ("shop", "netfence-db-cache-ingress"),
        ("shop", "netfence-db-cache-egress"),
        ("shop", "netfence-web-ingress"),
        ("shop", "netfence-web-egress"),
        ("shop", "netfence-web-canary-ingress"),
        ("shop", "netfence-web-canary-egress"),
        ("tools", "netfence-toolbox-ingress"),
        ("tools", "netfence-toolbox-egress"),
    ]
    by_name = {p.name: p for p in suggestion.policies}
    web = by_name["netfence-web-ingress"]
    assert web.policy_types == frozenset({Direction.INGRESS})
    assert [r.peers for r in web.ingress] == [
        (Peer(pod_selector=LabelSelector.from_labels({"app": "toolbox"}), namespace_selector=LabelSelector.from_labels({"kubernetes.io/metadata.name": "tools"})),),
        (Peer(ip_block=IPBlock(ip_network("192.0.2.10/32"))),),
    ]
    api_egress = by_name["netfence-api-egress"]
    assert [[str(p) for p in r.ports or ()] for r in api_egress.egress] == [["TCP 5432"], ["UDP 11211"], ["TCP 443"]]
    assert by_name["netfence-web-canary-ingress"].ingress == () and by_name["netfence-web-canary-egress"].egress == ()


def test_suggestion_is_deterministic_whatever_the_order_of_the_records(shop: Inventory) -> None:
    first = suggest(shop, records(*OBSERVED), egress=True)
    second = suggest(shop, records(*reversed(OBSERVED * 2)), egress=True)
    assert first.policies == second.policies and first.flows == second.flows


def test_egress_policies_are_written_only_when_asked(shop: Inventory) -> None:
    suggestion = suggest(shop, records(*OBSERVED))
    assert {p.policy_types for p in suggestion.policies} == {frozenset({Direction.INGRESS})}
    assert suggestion.check.unexpected == ()


def test_namespace_scope_limits_the_policies_not_the_peers(shop: Inventory) -> None:
    suggestion = suggest(shop, records(*OBSERVED), namespaces=["tools"], egress=True)
    assert [p.name for p in suggestion.policies] == ["netfence-toolbox-ingress", "netfence-toolbox-egress"]
    assert suggestion.check.denied == () and suggestion.check.unexpected == ()


def test_outside_addresses_become_the_fewest_ip_blocks_holding_exactly_them() -> None:
    addresses = [ip_address(a) for a in ("10.0.0.5", "10.0.0.4", "10.0.0.7", "2001:db8::1", "10.0.0.4")]
    assert [str(n) for n in exact_networks(addresses)] == ["10.0.0.4/31", "10.0.0.7/32", "2001:db8::1/128"]


def test_a_service_address_as_destination_stands_for_its_backends_at_the_target_port(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        CLUSTER
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
        "spec: {selector: {app: web}, clusterIP: 10.43.0.80, ports: [{port: 8000, targetPort: 80}]}\n"
    )
    inventory = load_inventory([str(path)]).inventory
    suggestion = suggest(inventory, records(("tools/toolbox", "10.43.0.80", FlowPort(Protocol.TCP, 8000))))
    assert {(f.destination.id, f.port) for f in suggestion.flows} == {  # type: ignore[union-attr]
        ("shop/web-5d8f7-a1", HTTP),
        ("shop/web-5d8f7-b2", HTTP),
        ("shop/web-canary", HTTP),
    }


def test_dns_to_an_outside_address_also_admits_kube_dns_when_the_inventory_has_no_kube_system(shop: Inventory) -> None:
    dns = FlowPort(Protocol.UDP, 53)
    suggestion = suggest(shop, records(("tools/toolbox", "10.43.0.10", dns)), egress=True)
    toolbox = next(p for p in suggestion.policies if p.name == "netfence-toolbox-egress")
    assert [r.peers for r in toolbox.egress] == [
        (Peer(ip_block=IPBlock(ip_network("10.43.0.10/32"))),),
        (Peer(pod_selector=LabelSelector.from_labels({"k8s-app": "kube-dns"}), namespace_selector=LabelSelector.from_labels({"kubernetes.io/metadata.name": "kube-system"})),),
    ]
    assert any("k8s-app=kube-dns" in note for note in suggestion.notes)


def test_icmp_is_left_out_of_networkpolicies_and_allowed_by_calico(shop: Inventory) -> None:
    ping = ("tools/toolbox", "shop/db-0", FlowPort(Protocol.ICMP, None))
    plain = suggest(shop, records(ping))
    assert plain.flows == () and "a NetworkPolicy cannot name ICMP" in plain.notes[0]
    calico = suggest(shop, records(ping), kind=SuggestKind.CALICO)
    assert len(calico.flows) == 1 and calico.check.denied == ()
    assert allowed_pairs(shop, calico) == {ping}


def test_records_that_name_no_pod_are_skipped_with_their_first_line(shop: Inventory) -> None:
    suggestion = suggest(
        shop,
        records(
            ("shop/gone-1", "shop/db-0", HTTP),
            ("shop/gone-1", "shop/db-0", HTTP),
            ("192.0.2.99", "198.51.100.1", HTTP),
            ("shop/api-0", "shop/api-0", HTTP),
        ),
    )
    assert suggestion.notes[:3] == (
        "flows.jsonl:1: skipped (2 records): src: no pod shop/gone-1 in the inventory",
        "flows.jsonl:3: skipped: 192.0.2.99 -> 198.51.100.1: neither end is a pod of the inventory",
        "flows.jsonl:4: skipped: shop/api-0 -> itself: a pod reaching itself is always allowed",
    )



@pytest.mark.parametrize("kind", list(SuggestKind))
def test_written_manifests_load_back_to_the_suggested_policies(shop: Inventory, tmp_path: Path, kind: SuggestKind) -> None:
    suggestion = suggest(shop, records(*OBSERVED, ("tools/toolbox", "shop/db-0", FlowPort(Protocol.ICMP, None))), kind=kind, egress=True)
    buffer = io.StringIO()
    write_suggestion(suggestion, "yaml", buffer)
    path = tmp_path / "suggested.yaml"
    path.write_text(buffer.getvalue())
    loaded = load_inventory([str(path)]).inventory

    def bare(policies: Iterable[object]) -> list[object]:
        return [dataclasses.replace(p, location=None) for p in policies]  # type: ignore[type-var]

    assert bare(loaded.policies) == bare(sorted(suggestion.policies, key=lambda p: (p.namespace, p.name)))
    assert bare(loaded.calico_policies) == bare(sorted(suggestion.calico_policies, key=lambda p: (p.namespace or "", p.name)))


def test_the_check_reports_allowed_flows_no_observed_flow_generalizes_to(shop: Inventory) -> None:
    observed = ("tools/toolbox", "shop/web-5d8f7-a1", HTTP)
    suggestion = suggest(shop, records(observed))
    # A hand-widened policy: every pod of tools may reach every pod of shop on port 80.
    widened = NetworkPolicy(
        "shop",
        "too-wide",
        LabelSelector(),
        frozenset({Direction.INGRESS}),
        ingress=(PolicyRule(peers=(Peer(namespace_selector=LabelSelector.from_labels({"kubernetes.io/metadata.name": "tools"})),), ports=(PolicyPort(port=80),)),),
    )
    ruleset = suggested_ruleset(shop, (*suggestion.policies, widened), ())
    ingress = {d.workload.id for d in suggestion.dependencies}
    result = check(shop, ruleset, suggestion.workloads, suggestion.flows, ingress, set())
    assert [(e.source, e.destination) for e in result.unexpected] == [
        ("tools/toolbox", "shop/api-0"),
        ("tools/toolbox", "shop/cache"),
        ("tools/toolbox", "shop/db-0"),
        ("tools/toolbox", "shop/web-canary"),
    ]
    assert [g.pairs for g in result.generalized] == [(("tools/toolbox", "shop/web-5d8f7-b2"),)]
