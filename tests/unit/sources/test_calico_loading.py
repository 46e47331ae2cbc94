"""Loading Calico kinds: both API groups, Calico's defaults, List dumps, and names shared with Kubernetes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from netfence.errors import InputErrors
from netfence.model.calico import (
    CalicoAction,
    CalicoPort,
    CalicoRule,
    EntityRule,
    HostEndpoint,
    HostEndpointPort,
    IcmpMatch,
    NetworkSet,
    ServiceAccountMatch,
    ServiceMatch,
    Tier,
    TierDefaultAction,
)
from netfence.model.calico_selector import Selector, parse_selector
from netfence.model.inventory import Inventory
from netfence.model.labels import Labels
from netfence.model.policies import Direction, PolicyKind
from netfence.model.ports import Protocol
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]

V3, CRD = "projectcalico.org/v3", "crd.projectcalico.org/v1"

EVERY_KIND = """\
apiVersion: {api}
kind: Tier
metadata: {{name: security}}
spec: {{order: 100, defaultAction: Pass}}
---
apiVersion: {api}
kind: NetworkPolicy
metadata: {{name: api-in, namespace: shop}}
spec:
  tier: security
  order: 10.5
  selector: app == 'api'
  serviceAccountSelector: role == 'web'
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'frontend'
      namespaceSelector: global()
      serviceAccounts: {{names: [web], selector: tier == 'front'}}
    destination:
      ports: [80, '8000:8080', http]
      notPorts: ['8081']
  - action: Deny
    protocol: ICMP
    icmp: {{type: 8, code: 0}}
    ipVersion: 4
    metadata: {{annotations: {{why: no pings}}}}
  egress:
  - action: Pass
    notProtocol: UDP
    notICMP: {{type: 3}}
    protocol: ICMPv6
    destination: {{nets: ['fd00::/64'], notNets: ['fd00::1/128']}}
  - action: Log
    destination:
      services: {{name: db}}
---
apiVersion: {api}
kind: GlobalNetworkPolicy
metadata: {{name: hosts}}
spec:
  order: 1
  selector: has(host)
  namespaceSelector: env == 'prod'
  doNotTrack: true
  applyOnForward: true
  ingress:
  - action: Allow
    source:
      services: {{name: dns, namespace: kube-system}}
  - action: Deny
    source:
      notSelector: role == 'x'
---
apiVersion: {api}
kind: NetworkSet
metadata: {{name: partners, namespace: shop, labels: {{role: partner}}}}
spec: {{nets: [198.51.100.0/28]}}
---
apiVersion: {api}
kind: GlobalNetworkSet
metadata: {{name: internet, labels: {{role: internet}}}}
spec: {{nets: [0.0.0.0/0, '::/0']}}
---
apiVersion: {api}
kind: HostEndpoint
metadata: {{name: node1-eth0, labels: {{host: node1}}}}
spec:
  node: node1
  interfaceName: eth0
  expectedIPs: [192.168.0.1, 'fd00::1']
  profiles: [projectcalico-default-allow]
  ports:
  - {{name: ssh, port: 22, protocol: TCP}}
  - {{name: dns, port: 53, protocol: 17}}
"""


def without_locations(inventory: Inventory) -> dict[str, Any]:
    def strip(objects: tuple[Any, ...]) -> list[Any]:
        return [dataclasses.replace(o, location=None) for o in objects]

    return {
        "calico_policies": strip(inventory.calico_policies),
        "tiers": strip(inventory.tiers),
        "network_sets": strip(inventory.network_sets),
        "host_endpoints": strip(inventory.host_endpoints),
    }


def load_one(write: Write, text: str) -> Inventory:
    return load_inventory([write("x.yaml", text)]).inventory


def policy_spec(body: str, kind: str = "NetworkPolicy", api: str = V3) -> str:
    meta = "{name: p, namespace: dev}" if kind == "NetworkPolicy" else "{name: p}"
    return f"apiVersion: {api}\nkind: {kind}\nmetadata: {meta}\nspec:\n{body}"


def test_both_api_groups_load_to_equal_model_objects(write: Write) -> None:
    v3 = load_inventory([write("v3.yaml", EVERY_KIND.format(api=V3))]).inventory
    crd = load_inventory([write("crd.yaml", EVERY_KIND.format(api=CRD))]).inventory
    assert without_locations(v3) == without_locations(crd)
    assert (len(v3.calico_policies), len(v3.tiers), len(v3.network_sets), len(v3.host_endpoints)) == (2, 1, 2, 1)


def test_calico_policy_fields_become_model_values(write: Write) -> None:
    inventory = load_one(write, EVERY_KIND.format(api=V3))
    policy = next(p for p in inventory.calico_policies if p.name == "api-in")
    assert (policy.kind, policy.namespace, policy.tier, policy.order) == (
        PolicyKind.CALICO_NETWORK_POLICY,
        "shop",
        "security",
        10.5,
    )
    assert policy.selector == parse_selector("app == 'api'")
    assert policy.service_account_selector == parse_selector("role == 'web'")
    assert (policy.types, policy.types_defaulted) == (frozenset({Direction.INGRESS, Direction.EGRESS}), False)
    assert policy.ingress[0] == CalicoRule(
        action=CalicoAction.ALLOW,
        protocol=Protocol.TCP,
        source=EntityRule(
            selector=parse_selector("role == 'frontend'"),
            namespace_selector=parse_selector("global()"),
            service_accounts=ServiceAccountMatch(("web",), parse_selector("tier == 'front'")),
        ),
        destination=EntityRule(
            ports=(CalicoPort(80, 80), CalicoPort(8000, 8080), CalicoPort(name="http")),
            not_ports=(CalicoPort(8081, 8081),),
        ),
    )
    assert policy.ingress[1] == CalicoRule(
        action=CalicoAction.DENY, protocol=Protocol.ICMP, icmp=IcmpMatch(8, 0), ip_version=4
    )
    assert policy.egress[0] == CalicoRule(
        action=CalicoAction.PASS,
        protocol=Protocol.ICMPV6,
        not_protocol=Protocol.UDP,
        not_icmp=IcmpMatch(3, None),
        destination=EntityRule(nets=(ip_network("fd00::/64"),), not_nets=(ip_network("fd00::1/128"),)),
    )


def test_global_network_policy_keeps_its_host_endpoint_options_and_namespace_selector(write: Write) -> None:
    inventory = load_one(write, EVERY_KIND.format(api=CRD))
    policy = next(p for p in inventory.calico_policies if p.name == "hosts")
    assert (policy.kind, policy.namespace, policy.tier) == (PolicyKind.GLOBAL_NETWORK_POLICY, None, "default")
    assert policy.namespace_selector == parse_selector("env == 'prod'")
    assert (policy.do_not_track, policy.pre_dnat, policy.apply_on_forward) == (True, False, True)
    assert [r.source for r in policy.ingress] == [
        EntityRule(services=ServiceMatch("dns", "kube-system")),
        EntityRule(not_selector=parse_selector("role == 'x'")),
    ]


def test_tiers_network_sets_and_host_endpoints_load(write: Write) -> None:
    inventory = load_one(write, EVERY_KIND.format(api=V3))
    assert [dataclasses.replace(t, location=None) for t in inventory.tiers] == [
        Tier("security", 100.0, TierDefaultAction.PASS)
    ]
    assert [dataclasses.replace(s, location=None) for s in inventory.network_sets] == [
        NetworkSet(None, "internet", Labels({"role": "internet"}), (ip_network("0.0.0.0/0"), ip_network("::/0"))),
        NetworkSet("shop", "partners", Labels({"role": "partner"}), (ip_network("198.51.100.0/28"),)),
    ]
    assert [dataclasses.replace(h, location=None) for h in inventory.host_endpoints] == [
        HostEndpoint(
            name="node1-eth0",
            labels=Labels({"host": "node1"}),
            node="node1",
            interface_name="eth0",
            expected_ips=(ip_address("192.168.0.1"), ip_address("fd00::1")),
            profiles=("projectcalico-default-allow",),
            ports=(HostEndpointPort("ssh", 22, Protocol.TCP), HostEndpointPort("dns", 53, Protocol.UDP)),
        )
    ]


@pytest.mark.parametrize(
    ("rules", "types"),
    [
        ("", {Direction.INGRESS}),
        ("  ingress: [{action: Allow}]\n", {Direction.INGRESS}),
        ("  egress: [{action: Allow}]\n", {Direction.EGRESS}),
        ("  ingress: [{action: Allow}]\n  egress: [{action: Deny}]\n", {Direction.INGRESS, Direction.EGRESS}),
        ("  ingress: []\n  egress: []\n", {Direction.INGRESS}),
    ],
    ids=["no rules", "ingress rules", "egress rules", "both", "empty lists"],
)
def test_omitted_types_are_filled_in_from_the_rules(write: Write, rules: str, types: set[Direction]) -> None:
    for kind in ("NetworkPolicy", "GlobalNetworkPolicy"):
        (policy,) = load_one(write, policy_spec("  selector: all()\n" + rules, kind)).calico_policies
        assert (policy.types, policy.types_defaulted) == (frozenset(types), True)


def test_policy_defaults_tier_order_selector_and_namespace(write: Write) -> None:
    text = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p}\n"
    (policy,) = load_one(write, text).calico_policies
    assert (policy.namespace, policy.tier, policy.order, policy.selector) == ("default", "default", None, Selector(""))
    assert (policy.namespace_selector, policy.service_account_selector) == (None, None)
    assert (policy.do_not_track, policy.pre_dnat, policy.apply_on_forward) == (False, False, False)


def test_empty_strings_are_unset_as_calico_writes_them(write: Write) -> None:
    body = (
        "  tier: ''\n  selector: ''\n  serviceAccountSelector: ''\n  namespaceSelector: ''\n"
        "  ingress:\n  - action: Allow\n    source: {selector: '', notSelector: '', namespaceSelector: ''}\n"
    )
    (policy,) = load_one(write, policy_spec(body, "GlobalNetworkPolicy")).calico_policies
    assert (policy.tier, policy.selector, policy.service_account_selector, policy.namespace_selector) == (
        "default",
        Selector(""),
        None,
        None,
    )
    assert policy.ingress[0].source == EntityRule()


def test_all_in_a_rule_is_a_selector_unlike_an_omitted_one(write: Write) -> None:
    body = "  ingress:\n  - action: Allow\n    source: {selector: all()}\n  - action: Allow\n"
    (policy,) = load_one(write, policy_spec(body)).calico_policies
    assert policy.ingress[0].source.selector == parse_selector("all()")
    assert policy.ingress[1].source.selector is None


def test_service_namespace_defaults_to_the_policy_namespace(write: Write) -> None:
    body = (
        "  egress:\n  - action: Allow\n    destination:\n      services: {name: db}\n"
        "  - action: Allow\n    destination:\n      services: {name: dns, namespace: kube-system}\n"
    )
    (policy,) = load_one(write, policy_spec(body)).calico_policies
    assert [r.destination.services for r in policy.egress] == [
        ServiceMatch("db", "dev"),
        ServiceMatch("dns", "kube-system"),
    ]


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("TCP", Protocol.TCP),
        ("6", Protocol.TCP),
        ("17", Protocol.UDP),
        ("'132'", Protocol.SCTP),
        ("58", Protocol.ICMPV6),
        ("136", Protocol.UDPLITE),
        ("UDPLite", Protocol.UDPLITE),
        ("47", 47),
    ],
)
def test_protocol_numbers_of_named_protocols_become_the_name(write: Write, protocol: str, expected: object) -> None:
    body = f"  ingress:\n  - action: Allow\n    protocol: {protocol}\n    notProtocol: {protocol}\n"
    (policy,) = load_one(write, policy_spec(body)).calico_policies
    assert (policy.ingress[0].protocol, policy.ingress[0].not_protocol) == (expected, expected)


def test_ports_as_numbers_strings_ranges_and_names(write: Write) -> None:
    body = "  ingress:\n  - action: Allow\n    protocol: UDP\n    destination: {ports: [53, '53', '1:65535', dns-tcp]}\n"
    (policy,) = load_one(write, policy_spec(body)).calico_policies
    assert policy.ingress[0].destination.ports == (
        CalicoPort(53, 53),
        CalicoPort(53, 53),
        CalicoPort(1, 65535),
        CalicoPort(name="dns-tcp"),
    )


def test_named_ports_need_no_protocol(write: Write) -> None:
    body = "  ingress:\n  - action: Allow\n    destination: {ports: [http]}\n"
    (policy,) = load_one(write, policy_spec(body)).calico_policies
    assert (policy.ingress[0].protocol, policy.ingress[0].destination.ports) == (None, (CalicoPort(name="http"),))


def test_service_accounts_without_names_or_selector_match_nothing_special(write: Write) -> None:
    body = "  ingress:\n  - action: Allow\n    source: {serviceAccounts: {}}\n"
    (policy,) = load_one(write, policy_spec(body)).calico_policies
    assert policy.ingress[0].source.service_accounts is None


def test_network_set_namespace_defaults_and_global_network_set_has_none(write: Write) -> None:
    text = (
        f"apiVersion: {V3}\nkind: NetworkSet\nmetadata: {{name: a}}\nspec: {{nets: [10.0.0.0/8]}}\n---\n"
        f"apiVersion: {V3}\nkind: GlobalNetworkSet\nmetadata: {{name: b}}\n"
    )
    inventory = load_one(write, text)
    assert [(s.namespace, s.name, s.nets) for s in inventory.network_sets] == [
        (None, "b", ()),
        ("default", "a", (ip_network("10.0.0.0/8"),)),
    ]


def test_tier_default_action_is_deny_and_order_may_be_omitted(write: Write) -> None:
    (tier,) = load_one(write, f"apiVersion: {CRD}\nkind: Tier\nmetadata: {{name: last}}\n").tiers
    assert (tier.order, tier.default_action) == (None, TierDefaultAction.DENY)


def test_policies_may_use_loaded_and_built_in_tiers(write: Write) -> None:
    text = "\n---\n".join(
        [
            f"apiVersion: {V3}\nkind: Tier\nmetadata: {{name: platform}}\nspec: {{order: 50}}",
            *(
                f"apiVersion: {V3}\nkind: GlobalNetworkPolicy\nmetadata: {{name: in-{tier}}}\nspec: {{tier: {tier}}}"
                for tier in ("platform", "default", "kube-admin", "kube-baseline")
            ),
        ]
    )
    assert sorted(p.tier for p in load_one(write, text).calico_policies) == [
        "default",
        "kube-admin",
        "kube-baseline",
        "platform",
    ]


def test_kubectl_list_of_calico_objects_loads(write: Write) -> None:
    # What `kubectl get networkpolicies.crd.projectcalico.org,globalnetworksets.crd.projectcalico.org -A -o yaml`
    # prints, trimmed of server-set metadata.
    path = write(
        "dump.yaml",
        """\
        apiVersion: v1
        kind: List
        items:
        - apiVersion: crd.projectcalico.org/v1
          kind: NetworkPolicy
          metadata:
            name: allow-dns
            namespace: shop
            resourceVersion: "123"
            uid: 0b5f3c3e-7d4c-4c50-9b8e-6b2b64a1f001
            creationTimestamp: "2024-05-01T10:00:00Z"
            generation: 1
          spec:
            tier: default
            order: 100
            selector: all()
            types: [Egress]
            egress:
            - action: Allow
              protocol: UDP
              destination:
                selector: k8s-app == 'kube-dns'
                namespaceSelector: projectcalico.org/name == 'kube-system'
                ports: [53]
        - apiVersion: crd.projectcalico.org/v1
          kind: GlobalNetworkSet
          metadata:
            name: internet
            labels: {role: internet}
            resourceVersion: "124"
          spec:
            nets: [0.0.0.0/0]
        metadata:
          resourceVersion: ""
        """,
    )
    loaded = load_inventory([path])
    inventory = loaded.inventory
    assert loaded.warnings == []
    assert [p.id for p in inventory.calico_policies] == ["shop/allow-dns"]
    assert [s.name for s in inventory.network_sets] == ["internet"]


def test_typed_calico_list_items_get_kind_and_api_version(write: Write) -> None:
    path = write(
        "tiers.yaml",
        """\
        apiVersion: projectcalico.org/v3
        kind: TierList
        items:
        - metadata: {name: a}
          spec: {order: 1}
        - metadata: {name: b}
        """,
    )
    assert [t.name for t in load_inventory([path]).inventory.tiers] == ["a", "b"]


def test_calico_and_kubernetes_network_policies_may_share_a_name(write: Write) -> None:
    text = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: dev}\n"
        "spec: {podSelector: {}}\n---\n" + policy_spec("  selector: all()\n")
    )
    inventory = load_one(write, text)
    assert ([p.name for p in inventory.policies], [p.id for p in inventory.calico_policies]) == (["p"], ["dev/p"])


def test_the_same_calico_policy_in_both_api_groups_is_defined_twice(write: Write) -> None:
    path = write("x.yaml", policy_spec("  selector: all()\n") + "---\n" + policy_spec("  selector: all()\n", api=CRD))
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:7: NetworkPolicy dev/p: defined twice (first at {path}:1)"


def test_calico_kind_typo_is_an_error_not_a_skip(write: Write) -> None:
    path = write("x.yaml", f"apiVersion: {V3}\nkind: GlobalNetworkPolcy\nmetadata: {{name: g}}\n")
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:2: unknown kind GlobalNetworkPolcy in {V3}; expected GlobalNetworkPolicy"


def test_a_crd_policy_without_types_loads_with_the_api_default_and_a_warning(write: Write) -> None:
    text = policy_spec("  selector: all()\n  egress: [{action: Allow}]\n", api="crd.projectcalico.org/v1")
    loaded = load_inventory([write("x.yaml", text)])
    (policy,) = loaded.inventory.calico_policies
    assert policy.types == {Direction.EGRESS} and policy.types_defaulted
    assert [w for w in loaded.warnings if "spec.types" in w] == [
        f"warning: {write('x.yaml', text)}:4: NetworkPolicy dev/p: spec.types: types omitted; netfence applies"
        " Calico's API default (Egress), but a crd.projectcalico.org/v1 object written directly is enforced"
        " for both directions: set types"
    ]
    # The same through the projectcalico.org/v3 API: its server fills types in, nothing to warn about.
    assert load_inventory([write("y.yaml", policy_spec("  selector: all()\n"))]).warnings == []
