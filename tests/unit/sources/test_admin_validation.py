"""Bad network-policy-api input gets one exact line per problem, as the API server's CRD validation
would refuse it: file:line: Kind name: field: what was expected."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from netfence.errors import InputErrors
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]
Run = Callable[..., tuple[int, str, str]]

ANP = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec:\n"
BANP = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n"
CNP = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec:\n"
# Lines 5-6 of every ANP below.
HEAD = "  priority: 10\n  subject: {namespaces: {}}\n"
CNP_HEAD = "  tier: Admin\n  priority: 10\n  subject: {namespaces: {}}\n"
NEW_PODS = "pods: {namespaceSelector: <label selector>, podSelector: <label selector>}"


def ingress(peers: str, ports: str = "", action: str = "Deny") -> str:
    """An ANP with one ingress rule; the first peer is on line 10, the first port on line 12."""
    text = ANP + HEAD + f"  ingress:\n  - action: {action}\n    from:\n    - {peers}\n"
    return text + (f"    ports:\n    - {ports}\n" if ports else "")


def egress(peers: str, ports: str = "", action: str = "Deny", head: str = ANP + HEAD) -> str:
    """One egress rule; the first peer is on line 10 (ANP), the first port on line 12."""
    text = head + f"  egress:\n  - action: {action}\n    to:\n    - {peers}\n"
    return text + (f"    ports:\n    - {ports}\n" if ports else "")


def many(line: str, count: int) -> str:
    return "".join(f"    - {line}\n" for _ in range(count))


# (whole document, expected message after "bad.yaml:")
CASES = [
    # AdminNetworkPolicy: priority and subject
    (ANP + "  subject: {namespaces: {}}\n", "4: AdminNetworkPolicy a: spec.priority: required field is missing"),
    (ANP + "  priority: 1001\n  subject: {namespaces: {}}\n", "5: AdminNetworkPolicy a: spec.priority: expected an integer 0-1000, got 1001"),
    (ANP + "  priority: -1\n  subject: {namespaces: {}}\n", "5: AdminNetworkPolicy a: spec.priority: expected an integer 0-1000, got -1"),
    (ANP + "  priority: \"10\"\n  subject: {namespaces: {}}\n", "5: AdminNetworkPolicy a: spec.priority: expected an integer 0-1000, got '10'"),
    (ANP + "  priority: 1\n", "4: AdminNetworkPolicy a: spec.subject: required field is missing"),
    (ANP + "  priority: 1\n  subject: {}\n", "6: AdminNetworkPolicy a: spec.subject: a subject needs one of namespaces, pods"),
    (
        ANP + "  priority: 1\n  subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}\n",
        "6: AdminNetworkPolicy a: spec.subject: a subject sets exactly one of namespaces, pods; got namespaces and pods",
    ),
    (
        ANP + "  priority: 1\n  subject: {pods: {podSelector: {}}}\n",
        "6: AdminNetworkPolicy a: spec.subject.pods.namespaceSelector: required field is missing",
    ),
    (ANP + HEAD + "  subjet: {}\n", "7: AdminNetworkPolicy a: spec.subjet: unknown field 'subjet'; expected 'subject'"),
    ("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\n", "1: AdminNetworkPolicy a: spec: required field is missing"),
    # rules
    (ingress("namespaces: {}", action="Accept"), "8: AdminNetworkPolicy a: spec.ingress[0].action: expected Allow, Deny or Pass, got 'Accept'"),
    (ANP + HEAD + "  ingress:\n  - from: [{namespaces: {}}]\n", "8: AdminNetworkPolicy a: spec.ingress[0].action: required field is missing"),
    (ANP + HEAD + "  egress:\n  - action: Deny\n", "8: AdminNetworkPolicy a: spec.egress[0].to: required field is missing"),
    (ANP + HEAD + "  egress:\n  - action: Deny\n    to: []\n", "9: AdminNetworkPolicy a: spec.egress[0].to: expected 1-100 peers, got 0"),
    (
        ANP + HEAD + "  ingress:\n  - action: Deny\n    from:\n" + many("namespaces: {}", 101),
        "9: AdminNetworkPolicy a: spec.ingress[0].from: expected 1-100 peers, got 101",
    ),
    (
        ANP + HEAD + "  ingress:\n" + "".join("  - {action: Deny, from: [namespaces: {}]}\n" for _ in range(101)),
        "7: AdminNetworkPolicy a: spec.ingress: expected at most 100 rules, got 101",
    ),
    (
        ANP + HEAD + "  ingress:\n  - action: Deny\n    name: " + "r" * 101 + "\n    from: [{namespaces: {}}]\n",
        "9: AdminNetworkPolicy a: spec.ingress[0].name: expected at most 100 characters, got 101",
    ),
    (ingress("namespaces: {}") + "    form: []\n", "11: AdminNetworkPolicy a: spec.ingress[0].form: unknown field 'form'; expected 'from'"),
    # peers: exactly one field, by direction
    (ingress("{}"), "10: AdminNetworkPolicy a: spec.ingress[0].from[0]: a peer needs one of namespaces, pods"),
    (
        ingress("{namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}"),
        "10: AdminNetworkPolicy a: spec.ingress[0].from[0]: a peer sets exactly one of namespaces, pods; got namespaces and pods",
    ),
    (
        egress("{nodes: {}, networks: [10.0.0.0/8]}"),
        "10: AdminNetworkPolicy a: spec.egress[0].to[0]: a peer sets exactly one of namespaces, pods, nodes, networks, domainNames; got nodes and networks",
    ),
    (ingress("networks: [10.0.0.0/8]"), "10: AdminNetworkPolicy a: spec.ingress[0].from[0].networks: networks peers are only allowed in egress rules"),
    (ingress("nodes: {}"), "10: AdminNetworkPolicy a: spec.ingress[0].from[0].nodes: nodes peers are only allowed in egress rules"),
    (
        ingress("domainNames: [example.com]", action="Allow"),
        "10: AdminNetworkPolicy a: spec.ingress[0].from[0].domainNames: domainNames peers are only allowed in egress rules",
    ),
    # a typo, or NetworkPolicy's shape, is an error (not a field of a newer API)
    (ingress("namespace: {}"), "10: AdminNetworkPolicy a: spec.ingress[0].from[0].namespace: unknown field 'namespace'; expected 'namespaces'"),
    (ingress("podSelector: {}"), "10: AdminNetworkPolicy a: spec.ingress[0].from[0].podSelector: unknown field 'podSelector'; expected one of namespaces, pods"),
    (
        ingress("{namespaces: {}, services: [web]}"),
        "10: AdminNetworkPolicy a: spec.ingress[0].from[0].services: unknown field 'services'; expected one of namespaces, pods",
    ),
    (
        ingress("pods: {namespaceSelector: {}}"),
        "10: AdminNetworkPolicy a: spec.ingress[0].from[0].pods.podSelector: required field is missing",
    ),
    (
        ingress("namespaces: {matchLabels: {team: 7}}"),
        "10: AdminNetworkPolicy a: spec.ingress[0].from[0].namespaces.matchLabels.team: expected a string, got 7",
    ),
    # the peer shapes of network-policy-api v0.1.0-v0.1.2
    (
        ingress("namespaces: {sameLabels: [team]}"),
        "10: AdminNetworkPolicy a: spec.ingress[0].from[0].namespaces.sameLabels: sameLabels was removed from the API; write namespaces: <label selector>",
    ),
    (
        egress("namespaces: {notSameLabels: [team]}"),
        "10: AdminNetworkPolicy a: spec.egress[0].to[0].namespaces.notSameLabels: notSameLabels was removed from the API; write namespaces: <label selector>",
    ),
    (
        ingress("namespaces: {namespaceSelector: {matchLabels: {team: a}}}"),
        "10: AdminNetworkPolicy a: spec.ingress[0].from[0].namespaces.namespaceSelector: namespaceSelector was removed from the API; write namespaces: <label selector>",
    ),
    (
        ingress("pods: {namespaces: {namespaceSelector: {}}, podSelector: {}}"),
        f"10: AdminNetworkPolicy a: spec.ingress[0].from[0].pods.namespaces: pods.namespaces was removed from the API; write {NEW_PODS}",
    ),
    (
        egress("pods: {namespaces: {sameLabels: [team]}, podSelector: {}}"),
        f"10: AdminNetworkPolicy a: spec.egress[0].to[0].pods.namespaces.sameLabels: sameLabels was removed from the API; write {NEW_PODS}",
    ),
    # networks and domain names
    (egress("networks: []"), "10: AdminNetworkPolicy a: spec.egress[0].to[0].networks: expected 1-25 CIDRs, got 0"),
    (
        egress("networks: [" + ", ".join(f"10.0.{i}.0/24" for i in range(26)) + "]"),
        "10: AdminNetworkPolicy a: spec.egress[0].to[0].networks: expected 1-25 CIDRs, got 26",
    ),
    (
        egress("networks: [10.0.0.0/8, 10.0.0.0/33]"),
        "10: AdminNetworkPolicy a: spec.egress[0].to[0].networks[1]: expected a CIDR such as 10.0.0.0/16 or fd00::/64, got '10.0.0.0/33'",
    ),
    (
        egress("domainNames: ['*.example.com', 'www.*.example.com']", action="Allow"),
        "10: AdminNetworkPolicy a: spec.egress[0].to[0].domainNames[1]: expected a domain name such as example.com or *.example.com, got 'www.*.example.com'",
    ),
    (
        egress("domainNames: [example.com]", action="Deny"),
        "10: AdminNetworkPolicy a: spec.egress[0].to[0].domainNames: domainNames peers are only allowed in Allow rules, got action Deny",
    ),
    (
        egress("domainNames: [example.com]", action="Pass"),
        "10: AdminNetworkPolicy a: spec.egress[0].to[0].domainNames: domainNames peers are only allowed in Allow rules, got action Pass",
    ),
    # ports
    (ingress("namespaces: {}") + "    ports: []\n", "11: AdminNetworkPolicy a: spec.ingress[0].ports: expected 1-100 ports, got 0"),
    (ingress("namespaces: {}", "{}"), "12: AdminNetworkPolicy a: spec.ingress[0].ports[0]: a port needs one of portNumber, portRange, namedPort"),
    (
        ingress("namespaces: {}", "{portNumber: {port: 80}, namedPort: http}"),
        "12: AdminNetworkPolicy a: spec.ingress[0].ports[0]: a port sets exactly one of portNumber, portRange, namedPort; got portNumber and namedPort",
    ),
    (ingress("namespaces: {}", "portNumber: {port: 0}"), "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portNumber.port: expected a port number 1-65535, got 0"),
    (ingress("namespaces: {}", "portNumber: {port: 65536}"), "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portNumber.port: expected a port number 1-65535, got 65536"),
    (ingress("namespaces: {}", "portNumber: {port: http}"), "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portNumber.port: expected a port number 1-65535, got 'http'"),
    (ingress("namespaces: {}", "portNumber: {protocol: UDP}"), "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portNumber.port: required field is missing"),
    (
        ingress("namespaces: {}", "portNumber: {port: 53, protocol: udp}"),
        "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portNumber.protocol: expected TCP, UDP or SCTP, got 'udp'",
    ),
    (
        ingress("namespaces: {}", "portRange: {start: 90, end: 80}"),
        "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portRange.end: expected a port number above start 90, got 80",
    ),
    (
        ingress("namespaces: {}", "portRange: {start: 80, end: 80}"),
        "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portRange.end: expected a port number above start 80, got 80",
    ),
    (
        ingress("namespaces: {}", "portRange: {start: 80, end: 70000}"),
        "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portRange.end: expected a port number 1-65535, got 70000",
    ),
    (ingress("namespaces: {}", "portRange: {start: 80}"), "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].portRange.end: required field is missing"),
    (ingress("namespaces: {}", "port: 80"), "12: AdminNetworkPolicy a: spec.ingress[0].ports[0].port: unknown field 'port'; expected 'portRange'"),
    # named ports only towards pods
    (
        egress("networks: [10.0.0.0/8]", "namedPort: http"),
        "12: AdminNetworkPolicy a: spec.egress[0].ports[0].namedPort: a named port cannot be used with networks peers, which have no named ports",
    ),
    (
        egress("namespaces: {}\n    - nodes: {}", "portNumber: {port: 80}\n    - namedPort: http"),
        "14: AdminNetworkPolicy a: spec.egress[0].ports[1].namedPort: a named port cannot be used with nodes peers, which have no named ports",
    ),
    (
        egress("domainNames: [example.com]", "namedPort: https", action="Allow"),
        "12: AdminNetworkPolicy a: spec.egress[0].ports[0].namedPort: a named port cannot be used with domainNames peers, which have no named ports",
    ),
    # BaselineAdminNetworkPolicy
    (
        "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: baseline}\nspec: {subject: {namespaces: {}}}\n",
        "3: BaselineAdminNetworkPolicy baseline: metadata.name: expected 'default' (the only name a BaselineAdminNetworkPolicy may have), got 'baseline'",
    ),
    (BANP + "  priority: 1\n  subject: {namespaces: {}}\n", "5: BaselineAdminNetworkPolicy default: spec.priority: unknown field 'priority'; expected one of egress, ingress, subject"),
    (
        BANP + "  subject: {namespaces: {}}\n  ingress:\n  - action: Pass\n    from: [{namespaces: {}}]\n",
        "7: BaselineAdminNetworkPolicy default: spec.ingress[0].action: expected Allow or Deny, got 'Pass'",
    ),
    (
        egress("domainNames: [example.com]", action="Allow", head=BANP + "  subject: {namespaces: {}}\n"),
        "9: BaselineAdminNetworkPolicy default: spec.egress[0].to[0].domainNames: domainNames peers are only allowed in AdminNetworkPolicy and ClusterNetworkPolicy",
    ),
    (
        egress("nodes: {}", "namedPort: http", head=BANP + "  subject: {namespaces: {}}\n"),
        "11: BaselineAdminNetworkPolicy default: spec.egress[0].ports[0].namedPort: a named port cannot be used with nodes peers, which have no named ports",
    ),
    # ClusterNetworkPolicy
    (CNP + "  priority: 1\n  subject: {namespaces: {}}\n", "4: ClusterNetworkPolicy c: spec.tier: required field is missing"),
    (CNP + "  tier: admin\n  priority: 1\n  subject: {namespaces: {}}\n", "5: ClusterNetworkPolicy c: spec.tier: expected Admin or Baseline, got 'admin'"),
    (CNP + "  tier: Baseline\n  subject: {namespaces: {}}\n", "4: ClusterNetworkPolicy c: spec.priority: required field is missing"),
    (CNP + "  tier: Baseline\n  priority: 2000\n  subject: {namespaces: {}}\n", "6: ClusterNetworkPolicy c: spec.priority: expected an integer 0-1000, got 2000"),
    (CNP + "  tier: Admin\n  priority: 1\n  subject: {pods: {}}\n", "7: ClusterNetworkPolicy c: spec.subject.pods.podSelector: required field is missing"),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Allow\n    from: [{namespaces: {}}]\n",
        "9: ClusterNetworkPolicy c: spec.ingress[0].action: expected Accept, Deny or Pass, got 'Allow'",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n" + "".join("  - {action: Deny, from: [namespaces: {}]}\n" for _ in range(26)),
        "8: ClusterNetworkPolicy c: spec.ingress: expected at most 25 rules, got 26",
    ),
    (
        CNP + CNP_HEAD + "  egress:\n  - action: Deny\n    to:\n" + many("namespaces: {}", 26),
        "10: ClusterNetworkPolicy c: spec.egress[0].to: expected 1-25 peers, got 26",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    ports: [{portNumber: {port: 80}}]\n",
        "11: ClusterNetworkPolicy c: spec.ingress[0].ports: ClusterNetworkPolicy has no ports; write protocols: [{tcp: {destinationPort: {number: 80}}}]",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{nodes: {}}]\n",
        "10: ClusterNetworkPolicy c: spec.ingress[0].from[0].nodes: nodes peers are only allowed in egress rules",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols: []\n",
        "11: ClusterNetworkPolicy c: spec.ingress[0].protocols: expected 1-25 protocols, got 0",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - {}\n",
        "12: ClusterNetworkPolicy c: spec.ingress[0].protocols[0]: a protocol entry needs one of tcp, udp, sctp, destinationNamedPort",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - {tcp: {destinationPort: {number: 80}}, udp: {destinationPort: {number: 80}}}\n",
        "12: ClusterNetworkPolicy c: spec.ingress[0].protocols[0]: a protocol entry sets exactly one of tcp, udp, sctp, destinationNamedPort; got tcp and udp",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - tcp: {}\n",
        "12: ClusterNetworkPolicy c: spec.ingress[0].protocols[0].tcp.destinationPort: required field is missing",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - udp: {destinationPort: {}}\n",
        "12: ClusterNetworkPolicy c: spec.ingress[0].protocols[0].udp.destinationPort: a destinationPort needs one of number, range",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - sctp: {destinationPort: {number: 0}}\n",
        "12: ClusterNetworkPolicy c: spec.ingress[0].protocols[0].sctp.destinationPort.number: expected a port number 1-65535, got 0",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - tcp: {destinationPort: {range: {start: 9000, end: 8000}}}\n",
        "12: ClusterNetworkPolicy c: spec.ingress[0].protocols[0].tcp.destinationPort.range.end: expected a port number above start 9000, got 8000",
    ),
    (
        CNP + CNP_HEAD + "  ingress:\n  - action: Deny\n    from: [{namespaces: {}}]\n    protocols:\n    - icmp: {}\n",
        "12: ClusterNetworkPolicy c: spec.ingress[0].protocols[0].icmp: unknown field 'icmp'; expected one of destinationNamedPort, sctp, tcp, udp",
    ),
    (
        CNP + CNP_HEAD + "  egress:\n  - action: Accept\n    to: [{networks: [0.0.0.0/0]}]\n    protocols:\n    - destinationNamedPort: http\n",
        "12: ClusterNetworkPolicy c: spec.egress[0].protocols[0].destinationNamedPort: a named port cannot be used with networks peers, which have no named ports",
    ),
    (
        CNP + CNP_HEAD + "  egress:\n  - action: Deny\n    to: [{domainNames: [example.com]}]\n",
        "10: ClusterNetworkPolicy c: spec.egress[0].to[0].domainNames: domainNames peers are only allowed in Accept rules, got action Deny",
    ),
    # Node and ServiceAccount
    (
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus:\n  addresses:\n  - {type: Hostname, address: n1}\n  - {type: InternalIP, address: 10.0.0.300}\n",
        "7: Node n1: status.addresses[1].address: expected an IPv4 or IPv6 address, got '10.0.0.300'",
    ),
    ("apiVersion: v1\nkind: ServiceAccount\nmetadata: {namespace: x}\n", "3: ServiceAccount x/(unnamed): metadata.name: required field is missing"),
]


@pytest.mark.parametrize(("text", "message"), CASES, ids=[m.split(": ", 1)[1][:70] for _, m in CASES])
def test_invalid_input_gets_one_exact_message(write: Write, text: str, message: str) -> None:
    path = write("bad.yaml", text)
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:{message}"


def test_every_problem_of_every_policy_is_reported_at_once(write: Write) -> None:
    path = write(
        "bad.yaml",
        textwrap.dedent(
            """\
            apiVersion: policy.networking.k8s.io/v1alpha1
            kind: AdminNetworkPolicy
            metadata: {name: a}
            spec:
              priority: 1001
              subject: {}
              ingress:
              - action: Allow
                from:
                - namespaces: {sameLabels: [team]}
                - networks: [10.0.0.0/8]
                ports:
                - portRange: {start: 90, end: 80}
            ---
            apiVersion: policy.networking.k8s.io/v1alpha1
            kind: BaselineAdminNetworkPolicy
            metadata: {name: baseline}
            spec:
              subject: {namespaces: {}}
              egress:
              - action: Pass
                to: [{domainNames: [example.com]}]
            ---
            apiVersion: policy.networking.k8s.io/v1alpha2
            kind: ClusterNetworkPolicy
            metadata: {name: c}
            spec:
              tier: Admin
              subject: {namespaces: {}}
              ingress:
              - action: Allow
                from: [{namespaces: {}}]
                protocols: [{tcp: {destinationPort: {number: 0}}}]
            """
        ),
    )
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    where = [line.split(": ")[0].removeprefix(f"{path}:") + " " + line.split(": ")[2] for line in str(caught.value).splitlines()]
    assert where == [
        "5 spec.priority",
        "6 spec.subject",
        "10 spec.ingress[0].from[0].namespaces.sameLabels",
        "11 spec.ingress[0].from[1].networks",
        "13 spec.ingress[0].ports[0].portRange.end",
        "17 metadata.name",
        "21 spec.egress[0].action",
        "22 spec.egress[0].to[0].domainNames",
        "27 spec.priority",
        "31 spec.ingress[0].action",
        "33 spec.ingress[0].protocols[0].tcp.destinationPort.number",
    ]


def test_validate_exits_2_listing_each_problem_on_stderr(write: Write, run: Run) -> None:
    path = write(
        "cluster.yaml",
        """\
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: old-shape}
        spec:
          priority: 10
          subject: {namespaces: {}}
          ingress:
          - action: Deny
            from:
            - namespaces:
                sameLabels: [tenant]
        ---
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: {name: accept-web}
        spec:
          tier: Baseline
          priority: 10
          subject: {namespaces: {}}
          ingress:
          - action: Allow
            from: [{namespaces: {}}]
        """,
    )
    code, out, err = run("validate", "-f", path)
    assert (code, out) == (2, "")
    assert err == (
        f"{path}:15: AdminNetworkPolicy old-shape: spec.ingress[0].from[0].namespaces.sameLabels: "
        "sameLabels was removed from the API; write namespaces: <label selector>\n"
        f"{path}:25: ClusterNetworkPolicy accept-web: spec.ingress[0].action: expected Accept, Deny or Pass, got 'Allow'\n"
    )


def test_validate_accepts_every_admin_kind(write: Write, run: Run) -> None:
    path = write(
        "cluster.yaml",
        """\
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: a}
        spec:
          priority: 10
          subject: {namespaces: {}}
          egress:
          - {action: Allow, to: [{domainNames: [example.com]}], ports: [{portNumber: {port: 443}}]}
        ---
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: BaselineAdminNetworkPolicy
        metadata: {name: default}
        spec:
          subject: {namespaces: {}}
          ingress:
          - {action: Deny, from: [{namespaces: {}}]}
        ---
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: {name: c}
        spec:
          tier: Admin
          priority: 0
          subject: {namespaces: {}}
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: n1}
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: robot, namespace: shop}
        """,
    )
    code, out, err = run("validate", "-f", path)
    assert (code, out, err) == (0, "valid: 5 objects (0 namespaces, 0 pods, 0 services, 3 policies)\n", "")
