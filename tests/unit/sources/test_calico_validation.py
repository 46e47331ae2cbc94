"""Bad Calico input gets one exact line per problem: file:line: Kind namespace/name: field: what was expected."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from netfence.errors import InputErrors
from netfence.model.calico_selector import SelectorError, parse_selector
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]
Run = Callable[..., tuple[int, str, str]]

NP = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: dev}\nspec:\n"
GNP = "apiVersion: crd.projectcalico.org/v1\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec:\n"


def selector_problem(text: str) -> str:
    """The message for an invalid selector, in the parser's own words."""
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    return f"invalid selector: {caught.value.message} at position {caught.value.position}"


PORT_EXPECTED = "expected a port number 1-65535, a range such as '8000:8080' or a port name (IANA service name), got"

# (whole document, expected message after "bad.yaml:")
CASES = [
    # actions
    (
        NP + "  ingress:\n  - action: allow\n",
        "6: NetworkPolicy dev/p: spec.ingress[0].action: expected Allow, Deny, Log or Pass, got 'allow'",
    ),
    (
        NP + "  ingress:\n  - protocol: TCP\n",
        "6: NetworkPolicy dev/p: spec.ingress[0].action: required field is missing",
    ),
    # selectors
    (
        NP + "  selector: app ==\n",
        "5: NetworkPolicy dev/p: spec.selector: " + selector_problem("app =="),
    ),
    (
        NP + "  egress:\n  - action: Allow\n    source: {notSelector: \"has(a\"}\n",
        "7: NetworkPolicy dev/p: spec.egress[0].source.notSelector: " + selector_problem("has(a"),
    ),
    (
        NP + "  serviceAccountSelector: \"role in {'a'\"\n",
        "5: NetworkPolicy dev/p: spec.serviceAccountSelector: " + selector_problem("role in {'a'"),
    ),
    (
        NP + "  selector: 7\n",
        "5: NetworkPolicy dev/p: spec.selector: expected a selector (a string), got 7",
    ),
    (
        NP + "  selector: global()\n",
        "5: NetworkPolicy dev/p: spec.selector: global() can only be used in a rule's namespaceSelector",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    source: {selector: \"global() || a == 'b'\"}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].source.selector: global() can only be used in a rule's namespaceSelector",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    source:\n      serviceAccounts: {selector: global()}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].source.serviceAccounts.selector: "
        "global() can only be used in a rule's namespaceSelector",
    ),
    (
        GNP + "  namespaceSelector: global()\n",
        "5: GlobalNetworkPolicy g: spec.namespaceSelector: global() can only be used in a rule's namespaceSelector",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    source: {namespaceSelector: \"global() && env == 'x'\"}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].source.namespaceSelector: global() cannot be combined with other selectors",
    ),
    # nets and addresses
    (
        NP + "  egress:\n  - action: Allow\n    destination: {nets: [10.0.0.0/33]}\n",
        "7: NetworkPolicy dev/p: spec.egress[0].destination.nets[0]: "
        "expected a CIDR such as 10.0.0.0/16 or fd00::/64, got '10.0.0.0/33'",
    ),
    (
        NP + "  egress:\n  - action: Allow\n    destination:\n      notNets:\n      - 10.0.0.0/8\n      - nope\n",
        "10: NetworkPolicy dev/p: spec.egress[0].destination.notNets[1]: "
        "expected a CIDR such as 10.0.0.0/16 or fd00::/64, got 'nope'",
    ),
    (
        NP + "  egress:\n  - action: Allow\n    source: {nets: [10.0.0.0/8]}\n    destination: {notNets: ['fd00::/64']}\n",
        "8: NetworkPolicy dev/p: spec.egress[0].destination.notNets[0]: "
        "expected an IPv4 CIDR (the rule's other nets are IPv4), got 'fd00::/64'",
    ),
    (
        NP + "  egress:\n  - action: Allow\n    ipVersion: 6\n    destination: {nets: [10.0.0.0/8]}\n",
        "8: NetworkPolicy dev/p: spec.egress[0].destination.nets[0]: "
        "expected an IPv6 CIDR (the rule's ipVersion is 6), got '10.0.0.0/8'",
    ),
    (
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: ext}\nspec:\n  nets: [1.2.3.0/24, 1.2.3]\n",
        "5: GlobalNetworkSet ext: spec.nets[1]: expected a CIDR such as 10.0.0.0/16 or fd00::/64, got '1.2.3'",
    ),
    (
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\n"
        "spec: {node: n1, expectedIPs: [10.0.0.0/24]}\n",
        "4: HostEndpoint h: spec.expectedIPs[0]: expected an IPv4 or IPv6 address, got '10.0.0.0/24'",
    ),
    # ports
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [70000]}\n",
        f"8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: {PORT_EXPECTED} 70000",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [0]}\n",
        f"8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: {PORT_EXPECTED} 0",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: ['65536']}\n",
        f"8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: {PORT_EXPECTED} '65536'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: ['90:80']}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: "
        "expected a port range start:end with start <= end, got '90:80'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: ['0:80']}\n",
        f"8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: {PORT_EXPECTED} '0:80'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [Web_Port]}\n",
        f"8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: {PORT_EXPECTED} 'Web_Port'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [a-very-long-port-name]}\n",
        f"8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: {PORT_EXPECTED} 'a-very-long-port-name'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [true]}\n",
        f"8: NetworkPolicy dev/p: spec.ingress[0].destination.ports[0]: {PORT_EXPECTED} true",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    destination: {ports: [http, 80]}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].destination.ports: "
        "a port number or range needs the rule's protocol to be TCP, UDP or SCTP",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    source: {notPorts: ['1000:2000']}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].source.notPorts: "
        "a port number or range needs the rule's protocol to be TCP, UDP or SCTP",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: ICMP\n    destination: {ports: [http]}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].destination.ports: "
        "ports need the rule's protocol to be TCP, UDP or SCTP, got 'ICMP'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: UDPLite\n    destination: {ports: [53]}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].destination.ports: "
        "ports need the rule's protocol to be TCP, UDP or SCTP, got 'UDPLite'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: 47\n    destination: {ports: [53]}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].destination.ports: "
        "ports need the rule's protocol to be TCP, UDP or SCTP, got 47",
    ),
    # protocols
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: tcp\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].protocol: "
        "expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a protocol number 1-255, got 'tcp'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: 0\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].protocol: "
        "expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a protocol number 1-255, got 0",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    notProtocol: 256\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].notProtocol: "
        "expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a protocol number 1-255, got 256",
    ),
    # ICMP and IP version
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {code: 0}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].icmp.code: an ICMP code needs an ICMP type",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: 255}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].icmp.type: expected an ICMP type 0-254, got 255",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: ICMPv6\n    notICMP: {type: 1, code: 256}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].notICMP.code: expected an ICMP code 0-255, got 256",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    icmp: {type: 8}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].icmp: icmp needs the rule's protocol to be ICMP or ICMPv6",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: TCP\n    notICMP: {type: 8}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].notICMP: notICMP needs the rule's protocol to be ICMP or ICMPv6",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    ipVersion: 5\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].ipVersion: expected 4 or 6, got 5",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    protocol: ICMP\n    ipVersion: 6\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ipVersion: protocol ICMP needs ipVersion 4, got 6",
    ),
    # services
    (
        NP + "  ingress:\n  - action: Allow\n    destination:\n      services: {name: db}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].destination.services: "
        "services are only allowed in an ingress rule's source",
    ),
    (
        NP + "  egress:\n  - action: Allow\n    source:\n      services: {name: db}\n",
        "8: NetworkPolicy dev/p: spec.egress[0].source.services: "
        "services are only allowed in an egress rule's destination",
    ),
    (
        NP + "  egress:\n  - action: Allow\n    destination:\n      selector: app == 'db'\n      services: {name: db}\n",
        "9: NetworkPolicy dev/p: spec.egress[0].destination.services: services cannot be combined with selector",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    source:\n      services: {name: db}\n"
        "      nets: [10.0.0.0/8]\n      serviceAccounts: {names: [a]}\n      namespaceSelector: all()\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].source.services: "
        "services cannot be combined with namespaceSelector, nets or serviceAccounts",
    ),
    (
        NP + "  egress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      services: {name: db}\n"
        "      ports: [5432]\n",
        "9: NetworkPolicy dev/p: spec.egress[0].destination.services: "
        "services cannot be combined with ports or notPorts in a destination",
    ),
    (
        NP + "  egress:\n  - action: Allow\n    destination:\n      services: {namespace: x}\n",
        "8: NetworkPolicy dev/p: spec.egress[0].destination.services.name: required field is missing",
    ),
    (
        GNP + "  ingress:\n  - action: Allow\n    source:\n      services: {name: db}\n",
        "8: GlobalNetworkPolicy g: spec.ingress[0].source.services.namespace: "
        "required in a GlobalNetworkPolicy (it has no namespace to default to)",
    ),
    # policy fields
    (
        NP + "  types: [Ingress, Egress, Ingress]\n",
        "5: NetworkPolicy dev/p: spec.types[2]: Ingress is listed twice",
    ),
    (
        NP + "  types: [ingress]\n",
        "5: NetworkPolicy dev/p: spec.types[0]: expected Ingress or Egress, got 'ingress'",
    ),
    (
        NP + "  order: '10'\n",
        "5: NetworkPolicy dev/p: spec.order: expected a number, got '10'",
    ),
    (
        NP + "  order: true\n",
        "5: NetworkPolicy dev/p: spec.order: expected a number, got true",
    ),
    (
        NP + "  tier: security\n",
        '5: NetworkPolicy dev/p: spec.tier: tier "security" does not exist; '
        "expected one of: default, kube-admin, kube-baseline",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    http: {methods: [GET]}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].http: application-layer rules are not supported",
    ),
    (
        NP + "  selecter: all()\n",
        "5: NetworkPolicy dev/p: spec.selecter: unknown field 'selecter'; expected 'selector'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    source: {notSelecter: all()}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].source.notSelecter: unknown field 'notSelecter'; expected 'notSelector'",
    ),
    (
        NP + "  ingress:\n  - action: Allow\n    destinaton: {}\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].destinaton: unknown field 'destinaton'; expected 'destination'",
    ),
    (
        NP + "  namespaceSelector: all()\n",
        "5: NetworkPolicy dev/p: spec.namespaceSelector: "
        "only a GlobalNetworkPolicy has a namespaceSelector; a NetworkPolicy applies in its own namespace",
    ),
    (
        GNP + "  doNotTrack: true\n  applyOnForward: true\n  preDNAT: true\n",
        "7: GlobalNetworkPolicy g: spec.preDNAT: preDNAT and doNotTrack cannot both be true",
    ),
    (
        GNP + "  preDNAT: true\n",
        "4: GlobalNetworkPolicy g: spec.applyOnForward: must be true when doNotTrack or preDNAT is true",
    ),
    (
        GNP + "  preDNAT: true\n  applyOnForward: true\n  types: [Egress]\n",
        "7: GlobalNetworkPolicy g: spec.types: a preDNAT policy cannot have type Egress",
    ),
    # tiers and host endpoints
    (
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {order: 100, defaultAction: Allow}\n",
        "4: Tier t: spec.defaultAction: expected Deny or Pass, got 'Allow'",
    ),
    (
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {order: first}\n",
        "4: Tier t: spec.order: expected a number, got 'first'",
    ),
    (
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\nspec: {interfaceName: eth0}\n",
        "4: HostEndpoint h: spec.node: required field is missing",
    ),
    (
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\nspec: {node: n1}\n",
        "4: HostEndpoint h: spec: a host endpoint needs interfaceName or expectedIPs",
    ),
    (
        "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\n"
        "spec:\n  node: n1\n  interfaceName: eth0\n  ports: [{name: dns, port: 53, protocol: ICMP}]\n",
        "7: HostEndpoint h: spec.ports[0].protocol: expected TCP, UDP or SCTP, got 'ICMP'",
    ),
]


@pytest.mark.parametrize(("text", "message"), CASES, ids=[m.split(": ", 2)[2][:60] for _, m in CASES])
def test_invalid_calico_object_gets_one_exact_message(write: Write, text: str, message: str) -> None:
    path = write("bad.yaml", text)
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:{message}"


def test_every_problem_is_reported_not_just_the_first(write: Write) -> None:
    path = write(
        "bad.yaml",
        textwrap.dedent(
            """\
            apiVersion: projectcalico.org/v3
            kind: NetworkPolicy
            metadata: {name: a, namespace: dev}
            spec:
              types: [Ingress, Ingress]
              ingress:
              - action: Allow
                icmp: {type: 8}
                destination: {ports: [80]}
                http: {paths: [{exact: /}]}
            ---
            apiVersion: crd.projectcalico.org/v1
            kind: GlobalNetworkPolicy
            metadata: {name: b}
            spec:
              tier: missing
            ---
            apiVersion: projectcalico.org/v3
            kind: Tier
            metadata: {name: c}
            spec: {order: x, defaultAction: Allow}
            """
        ),
    )
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert [line.split(": ", 3)[1:3] for line in str(caught.value).splitlines()] == [
        ["NetworkPolicy dev/a", "spec.types[1]"],
        ["NetworkPolicy dev/a", "spec.ingress[0].icmp"],
        ["NetworkPolicy dev/a", "spec.ingress[0].destination.ports"],
        ["NetworkPolicy dev/a", "spec.ingress[0].http"],
        ["GlobalNetworkPolicy b", "spec.tier"],
        ["Tier c", "spec.order"],
        ["Tier c", "spec.defaultAction"],
    ]


def test_validate_exits_2_listing_every_calico_problem(run: Run, write: Write) -> None:
    path = write(
        "bad.yaml",
        NP + "  ingress:\n  - action: Allow\n    protocol: ICMP\n    destination: {ports: [80]}\n"
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: ext}\nspec: {nets: [nope]}\n",
    )
    code, out, err = run("validate", "-f", path)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{path}:8: NetworkPolicy dev/p: spec.ingress[0].destination.ports: "
        "ports need the rule's protocol to be TCP, UDP or SCTP, got 'ICMP'",
        f"{path}:13: GlobalNetworkSet ext: spec.nets[0]: expected a CIDR such as 10.0.0.0/16 or fd00::/64, got 'nope'",
    ]
