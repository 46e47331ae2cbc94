"""Bad input gets one exact line per problem: file:line: Kind namespace/name: field: what was expected."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from netfence.errors import InputErrors
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]

HEAD = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: dev}
spec:
"""

# (spec body indented under `spec:`, expected message after "bad.yaml:LINE: ")
POLICY_CASES = [
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 70000\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ports[0].port: expected a port number 1-65535 or a port name (IANA service name), got 70000",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ports[0].port: expected a port number 1-65535 or a port name (IANA service name), got 0",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: Web_Port\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ports[0].port: expected a port number 1-65535 or a port name (IANA service name), got 'Web_Port'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: a-very-long-port-name\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ports[0].port: expected a port number 1-65535 or a port name (IANA service name), got 'a-very-long-port-name'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: \"8080\"\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ports[0].port: expected a port number 1-65535 or a port name (IANA service name), got '8080'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: true\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ports[0].port: expected a port number 1-65535 or a port name (IANA service name), got true",
    ),
    (
        "  podSelector: {}\n  egress:\n  - ports:\n    - {port: 80, protocol: ICMP}\n",
        "8: NetworkPolicy dev/p: spec.egress[0].ports[0].protocol: expected TCP, UDP or SCTP, got 'ICMP'",
    ),
    (
        "  podSelector: {}\n  egress:\n  - ports:\n    - {port: 80, protocol: tcp}\n",
        "8: NetworkPolicy dev/p: spec.egress[0].ports[0].protocol: expected TCP, UDP or SCTP, got 'tcp'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 90\n      endPort: 80\n",
        "9: NetworkPolicy dev/p: spec.ingress[0].ports[0].endPort: expected a port number not below port 90, got 80",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n      endPort: 90\n",
        "9: NetworkPolicy dev/p: spec.ingress[0].ports[0].endPort: endPort needs a numeric port",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - endPort: 90\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].ports[0].endPort: endPort needs a numeric port",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 80\n      endPort: 65536\n",
        "9: NetworkPolicy dev/p: spec.ingress[0].ports[0].endPort: expected a port number 1-65535, got 65536",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/33}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].from[0].ipBlock.cidr: expected a CIDR such as 10.0.0.0/16 or fd00::/64, got '10.0.0.0/33'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/16\n        except: [10.1.0.0/24]\n",
        "10: NetworkPolicy dev/p: spec.ingress[0].from[0].ipBlock.except[0]: expected a CIDR strictly inside 10.0.0.0/16, got '10.1.0.0/24'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10.0.0.0/16\n        except: [10.0.0.0/16]\n",
        "10: NetworkPolicy dev/p: spec.ingress[0].from[0].ipBlock.except[0]: expected a CIDR strictly inside 10.0.0.0/16, got '10.0.0.0/16'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].from[0]: a peer is either an ipBlock or pod/namespace selectors, not both",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from:\n    - {}\n",
        "8: NetworkPolicy dev/p: spec.ingress[0].from[0]: a peer needs podSelector, namespaceSelector or ipBlock",
    ),
    (
        "  podSelector:\n    matchExpressions:\n    - {key: app, operator: Equals, values: [x]}\n",
        "7: NetworkPolicy dev/p: spec.podSelector.matchExpressions[0].operator: expected In, NotIn, Exists or DoesNotExist, got 'Equals'",
    ),
    (
        "  podSelector:\n    matchExpressions:\n    - key: app\n      operator: In\n",
        "7: NetworkPolicy dev/p: spec.podSelector.matchExpressions[0].values: operator In needs at least one value",
    ),
    (
        "  podSelector:\n    matchExpressions:\n    - key: app\n      operator: Exists\n      values: [x]\n",
        "9: NetworkPolicy dev/p: spec.podSelector.matchExpressions[0].values: operator Exists takes no values",
    ),
    (
        "  podSelector:\n    matchLabels: {version: 2}\n",
        "6: NetworkPolicy dev/p: spec.podSelector.matchLabels.version: expected a string, got 2",
    ),
    (
        "  podSelecter: {}\n",
        "5: NetworkPolicy dev/p: spec.podSelecter: unknown field 'podSelecter'; expected 'podSelector'",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - form: []\n",
        "7: NetworkPolicy dev/p: spec.ingress[0].form: unknown field 'form'; expected 'from'",
    ),
    (
        "  podSelector: {}\n  policyTypes: [Ingress, egress]\n",
        "6: NetworkPolicy dev/p: spec.policyTypes[1]: expected Ingress or Egress, got 'egress'",
    ),
    (
        "  podSelector: {}\n  ingress: {from: []}\n",
        "6: NetworkPolicy dev/p: spec.ingress: expected a list, got a mapping",
    ),
]


@pytest.mark.parametrize(("spec", "message"), POLICY_CASES, ids=[m.split(": ")[2] for _, m in POLICY_CASES])
def test_invalid_network_policy_field_gets_one_exact_message(write: Write, spec: str, message: str) -> None:
    path = write("bad.yaml", HEAD + spec)
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:{message}"


OBJECT_CASES = [
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec:\n  containers:\n  - name: c\n    ports: [{containerPort: 99999}]\n",
        "7: Pod x/p: spec.containers[0].ports[0].containerPort: expected a port number 1-65535, got 99999",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nstatus:\n  podIPs: [{ip: 10.0.0.1}, {ip: 10.0.0.300}]\n",
        "5: Pod x/p: status.podIPs[1].ip: expected an IPv4 or IPv6 address, got '10.0.0.300'",
    ),
    (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: x}\nspec:\n  ports:\n  - {port: 80, targetPort: -1}\n",
        "6: Service x/s: spec.ports[0].targetPort: expected a port number 1-65535 or a port name (IANA service name), got -1",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n",
        "3: Pod x/(unnamed): metadata.name: required field is missing",
    ),
    (
        "kind: Pod\nmetadata: {name: p}\n",
        "1: Pod p: apiVersion: required field is missing",
    ),
    (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolcy\nmetadata: {name: p}\n",
        "2: unknown kind NetworkPolcy in networking.k8s.io/v1; expected NetworkPolicy",
    ),
    (
        "- a list\n- not an object\n",
        "1: expected a Kubernetes object (a mapping with apiVersion and kind), got a list",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n  bad: indent\n",
        "4: invalid YAML: did not find expected key",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: !!python/object:os.system {name: p}\n",
        "3: invalid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
    ),
]


@pytest.mark.parametrize(("text", "message"), OBJECT_CASES, ids=[m.split(": ", 1)[1][:40] for _, m in OBJECT_CASES])
def test_invalid_object_gets_one_exact_message(write: Write, text: str, message: str) -> None:
    path = write("bad.yaml", text)
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:{message}"


def test_every_problem_is_reported_not_just_the_first(write: Write) -> None:
    path = write(
        "bad.yaml",
        textwrap.dedent(
            """\
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: a, namespace: dev}
            spec:
              ingress:
              - ports: [{port: 0}, {port: 1, protocol: ICMP}]
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: b, namespace: dev}
            spec:
              egress:
              - to: [{ipBlock: {cidr: nope}}]
            """
        ),
    )
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert [line.split(": ", 3)[2] for line in str(caught.value).splitlines()] == [
        "spec.ingress[0].ports[0].port",
        "spec.ingress[0].ports[1].protocol",
        "spec.egress[0].to[0].ipBlock.cidr",
    ]


def test_the_same_object_twice_is_an_error(write: Write) -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n"
    path = write("twice.yaml", pod + "---\n" + pod)
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:5: Pod x/p: defined twice (first at {path}:1)"
