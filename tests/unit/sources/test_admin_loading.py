"""Loading AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy, ServiceAccount and Node."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_address, ip_network

import pytest

from netfence.errors import InputErrors
from netfence.model.admin import (
    AdminAction,
    AdminPeer,
    AdminPolicy,
    AdminPort,
    AdminRule,
    AdminSubject,
    AdminTier,
    PodsSelector,
)
from netfence.model.labels import LabelSelector, Operator, Requirement
from netfence.model.policies import PolicyKind
from netfence.model.ports import Protocol
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]
Run = Callable[..., tuple[int, str, str]]

ALL = LabelSelector()


def ns(name: str) -> LabelSelector:
    return LabelSelector.from_labels({"kubernetes.io/metadata.name": name})


def house(name: str) -> LabelSelector:
    return LabelSelector.from_labels({"conformance-house": name})


def only(write: Write, text: str) -> AdminPolicy:
    (policy,) = load_inventory([write("policy.yaml", text)]).inventory.admin_policies
    return policy


# The network-policy-api conformance "gress rules" scenario (gryffindor's ANP at priority 15),
# restated in the v0.1.3+ peer shape and trimmed to one rule of each kind.
def test_admin_network_policy_loads_rule_by_rule(write: Write) -> None:
    policy = only(
        write,
        """\
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: gress-rules}
        spec:
          priority: 15
          subject:
            namespaces:
              matchLabels: {kubernetes.io/metadata.name: gryffindor}
          ingress:
          - name: allow-from-ravenclaw-everything
            action: Allow
            from:
            - namespaces:
                matchLabels: {kubernetes.io/metadata.name: ravenclaw}
          - name: deny-from-slytherin-at-port-80-53-9003
            action: Deny
            from:
            - namespaces:
                matchLabels: {kubernetes.io/metadata.name: slytherin}
            ports:
            - portNumber: {protocol: TCP, port: 80}
            - portNumber: {protocol: UDP, port: 53}
            - portNumber: {protocol: SCTP, port: 9003}
          - name: pass-from-dumbledore
            action: Pass
            from:
            - pods:
                namespaceSelector:
                  matchLabels: {kubernetes.io/metadata.name: hogwarts-staff}
                podSelector:
                  matchLabels: {statefulset.kubernetes.io/pod-name: professor-dumbledore-0}
          egress:
          - name: deny-to-hufflepuff-range
            action: Deny
            to:
            - namespaces:
                matchExpressions:
                - {key: kubernetes.io/metadata.name, operator: In, values: [hufflepuff]}
            ports:
            - portRange: {protocol: TCP, start: 8080, end: 8090}
            - namedPort: web
        """,
    )
    dumbledore = PodsSelector(
        ns("hogwarts-staff"), LabelSelector.from_labels({"statefulset.kubernetes.io/pod-name": "professor-dumbledore-0"})
    )
    hufflepuff = LabelSelector((Requirement("kubernetes.io/metadata.name", Operator.IN, ("hufflepuff",)),))
    assert policy == AdminPolicy(
        kind=PolicyKind.ADMIN_NETWORK_POLICY,
        name="gress-rules",
        tier=AdminTier.ADMIN,
        priority=15,
        subject=AdminSubject(namespaces=ns("gryffindor")),
        ingress=(
            AdminRule(AdminAction.ALLOW, (AdminPeer(namespaces=ns("ravenclaw")),), None, "allow-from-ravenclaw-everything"),
            AdminRule(
                AdminAction.DENY,
                (AdminPeer(namespaces=ns("slytherin")),),
                (AdminPort(Protocol.TCP, 80, 80), AdminPort(Protocol.UDP, 53, 53), AdminPort(Protocol.SCTP, 9003, 9003)),
                "deny-from-slytherin-at-port-80-53-9003",
            ),
            AdminRule(AdminAction.PASS, (AdminPeer(pods=dumbledore),), None, "pass-from-dumbledore"),
        ),
        egress=(
            AdminRule(
                AdminAction.DENY,
                (AdminPeer(namespaces=hufflepuff),),
                (AdminPort(Protocol.TCP, 8080, 8090), AdminPort(name="web")),
                "deny-to-hufflepuff-range",
            ),
        ),
        location=policy.location,
    )
    assert policy.location is not None and policy.location.line == 1


def test_egress_peers_networks_nodes_and_domain_names(write: Write) -> None:
    # Conformance "egress selector rules" (experimental): nodes as peers, plus networks and
    # domain names.
    policy = only(
        write,
        """\
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: node-selector-as-peer-example}
        spec:
          priority: 75
          subject:
            pods:
              namespaceSelector: {matchLabels: {conformance-house: gryffindor}}
              podSelector: {matchLabels: {conformance-house: gryffindor}}
          egress:
          - name: allow-egress-to-36363-on-nodes
            action: Allow
            to:
            - nodes: {matchLabels: {kubernetes.io/os: linux}}
            ports:
            - portNumber: {protocol: TCP, port: 36363}
          - action: Allow
            to:
            - domainNames: [kubernetes.io, "*.kubernetes.io"]
          - action: Deny
            to:
            - networks: [10.0.0.0/8, "fd00::/8", 192.168.1.7/24]
            - nodes: {}
        """,
    )
    assert policy.subject == AdminSubject(pods=PodsSelector(house("gryffindor"), house("gryffindor")))
    nodes, domains, networks = policy.egress
    assert nodes.peers == (AdminPeer(nodes=LabelSelector.from_labels({"kubernetes.io/os": "linux"})),)
    assert nodes.ports == (AdminPort(Protocol.TCP, 36363, 36363),)
    assert domains.peers == (AdminPeer(domain_names=("kubernetes.io", "*.kubernetes.io")),)
    # Host bits are dropped, as for a NetworkPolicy ipBlock.
    expected = tuple(ip_network(n) for n in ("10.0.0.0/8", "fd00::/8", "192.168.1.0/24"))
    assert networks.peers == (AdminPeer(networks=expected), AdminPeer(nodes=ALL))
    assert policy.ingress == ()


def test_defaults_tcp_no_port_filter_and_no_rule_name(write: Write) -> None:
    policy = only(
        write,
        """\
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: defaults}
        spec:
          priority: 0
          subject: {namespaces: {}}
          ingress:
          - action: Deny
            from: [{namespaces: {}}]
            ports:
            - portNumber: {port: 80}
            - portRange: {start: 1000, end: 2000}
          - action: Deny
            from: [{namespaces: {}}]
        """,
    )
    ported, everything = policy.ingress
    assert ported.ports == (AdminPort(Protocol.TCP, 80, 80), AdminPort(Protocol.TCP, 1000, 2000))
    assert ported.name is None
    # Absent ports: every port and protocol, ICMP included.
    assert everything.ports is None
    assert (policy.priority, policy.subject, policy.egress) == (0, AdminSubject(namespaces=ALL), ())


def test_baseline_admin_network_policy_loads_in_the_baseline_tier_without_priority(write: Write) -> None:
    policy = only(
        write,
        """\
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: BaselineAdminNetworkPolicy
        metadata: {name: default}
        spec:
          subject:
            namespaces:
              matchLabels: {kubernetes.io/metadata.name: gryffindor}
          ingress:
          - name: allow-from-ravenclaw
            action: Allow
            from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: ravenclaw}}}]
          - name: deny-from-everyone-else
            action: Deny
            from: [{namespaces: {}}]
          egress:
          - action: Deny
            to: [{networks: [0.0.0.0/0]}, {nodes: {}}]
        status:
          conditions:
          - {type: Ready, status: "True", reason: SetupSucceeded, message: ok, lastTransitionTime: "2024-05-01T10:00:00Z"}
        """,
    )
    assert (policy.kind, policy.tier, policy.priority) == (
        PolicyKind.BASELINE_ADMIN_NETWORK_POLICY,
        AdminTier.BASELINE,
        None,
    )
    assert [(r.action, r.name) for r in policy.ingress] == [
        (AdminAction.ALLOW, "allow-from-ravenclaw"),
        (AdminAction.DENY, "deny-from-everyone-else"),
    ]
    assert policy.egress[0].peers == (AdminPeer(networks=(ip_network("0.0.0.0/0"),)), AdminPeer(nodes=ALL))


def test_cluster_network_policy_loads_onto_the_same_tiers_with_accept_as_allow(write: Write) -> None:
    path = write(
        "cnp.yaml",
        """\
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: {name: port-range-rules}
        spec:
          tier: Admin
          priority: 9
          subject:
            namespaces:
              matchLabels: {kubernetes.io/metadata.name: gryffindor}
          egress:
          - name: allow-to-ravenclaw-tcp-port-range
            action: Accept
            to:
            - namespaces: {matchLabels: {kubernetes.io/metadata.name: ravenclaw}}
            protocols:
            - tcp: {destinationPort: {range: {start: 80, end: 8080}}}
            - udp: {destinationPort: {number: 53}}
            - sctp: {destinationPort: {number: 9003}}
          - name: deny-all-egress
            action: Deny
            to:
            - namespaces:
                matchExpressions: [{key: conformance-house, operator: Exists}]
          ingress:
          - name: pass-from-named-port
            action: Pass
            from:
            - pods:
                podSelector: {matchLabels: {app: web}}
            protocols:
            - destinationNamedPort: http
        ---
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: {name: baseline-deny}
        spec:
          tier: Baseline
          priority: 4
          subject: {pods: {namespaceSelector: {}, podSelector: {}}}
          ingress:
          - action: Deny
            from: [{namespaces: {}}]
        """,
    )
    admin, baseline = sorted(load_inventory([path]).inventory.admin_policies, key=lambda p: p.tier != AdminTier.ADMIN)
    assert (admin.kind, admin.tier, admin.priority) == (PolicyKind.CLUSTER_NETWORK_POLICY, AdminTier.ADMIN, 9)
    accept, deny = admin.egress
    assert accept.action is AdminAction.ALLOW
    assert accept.ports == (
        AdminPort(Protocol.TCP, 80, 8080),
        AdminPort(Protocol.UDP, 53, 53),
        AdminPort(Protocol.SCTP, 9003, 9003),
    )
    assert (deny.action, deny.ports) == (AdminAction.DENY, None)
    (passing,) = admin.ingress
    # A ClusterNetworkPolicy pods peer without namespaceSelector selects in every namespace.
    assert passing.peers == (AdminPeer(pods=PodsSelector(ALL, LabelSelector.from_labels({"app": "web"}))),)
    assert (passing.action, passing.ports) == (AdminAction.PASS, (AdminPort(name="http"),))
    # Unlike a BaselineAdminNetworkPolicy, a baseline ClusterNetworkPolicy has a priority.
    assert (baseline.tier, baseline.priority, baseline.name) == (AdminTier.BASELINE, 4, "baseline-deny")


def test_a_peer_of_a_newer_api_fails_closed_with_a_warning(write: Write) -> None:
    path = write(
        "anp.yaml",
        """\
        apiVersion: policy.networking.k8s.io/v1alpha1
        kind: AdminNetworkPolicy
        metadata: {name: future}
        spec:
          priority: 5
          subject: {namespaces: {}}
          egress:
          - action: Allow
            to:
            - externalNetworks: {matchLabels: {set: cloud}}
          - action: Deny
            to:
            - namespaces: {}
            - services: [{name: api}]
        """,
    )
    loaded = load_inventory([path])
    (policy,) = loaded.inventory.admin_policies
    allow, deny = policy.egress
    assert allow.peers == (AdminPeer(),) and allow.peers[0].unknown
    assert deny.peers == (AdminPeer(namespaces=ALL), AdminPeer())
    assert loaded.warnings == [
        f"warning: {path}:10: AdminNetworkPolicy future: spec.egress[0].to[0]: peer has no field netfence knows "
        "(externalNetworks; written for a newer API version?); the Allow rule fails closed: it matches nothing",
        f"warning: {path}:14: AdminNetworkPolicy future: spec.egress[1].to[1]: peer has no field netfence knows "
        "(services; written for a newer API version?); the Deny rule fails closed: it denies all traffic",
    ]


def test_newer_api_peer_warning_comes_before_skipped_kinds_and_validate_still_passes(write: Write, run: Run) -> None:
    path = write(
        "cnp.yaml",
        """\
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: {name: future}
        spec:
          tier: Baseline
          priority: 1
          subject: {namespaces: {}}
          ingress:
          - action: Pass
            from: [{serviceAccounts: {name: robot}}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: d}
        """,
    )
    code, out, err = run("validate", "-f", path)
    assert (code, out) == (0, "valid: 1 objects (0 namespaces, 0 pods, 0 services, 1 policies)\n")
    assert err == (
        f"warning: {path}:10: ClusterNetworkPolicy future: spec.ingress[0].from[0]: peer has no field netfence knows "
        "(serviceAccounts; written for a newer API version?); the Pass rule fails closed: it denies all traffic\n"
        "warning: skipped 1 Deployment object (apps/v1): kind not understood\n"
    )


def test_an_admin_network_policy_and_a_cluster_network_policy_may_share_a_name(write: Write) -> None:
    anp = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: x}\nspec: {priority: 1, subject: {namespaces: {}}}\n"
    cnp = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: x}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}}\n"
    loaded = load_inventory([write("ok.yaml", anp + "---\n" + cnp)])
    assert sorted(p.kind for p in loaded.inventory.admin_policies) == [
        PolicyKind.ADMIN_NETWORK_POLICY,
        PolicyKind.CLUSTER_NETWORK_POLICY,
    ]
    path = write("twice.yaml", anp + "---\n" + anp)
    with pytest.raises(InputErrors) as caught:
        load_inventory([path])
    assert str(caught.value) == f"{path}:6: AdminNetworkPolicy x: defined twice (first at {path}:1)"


# --- ServiceAccount and Node ----------------------------------------------------------------------


def test_service_accounts_and_nodes_load_from_a_kubectl_dump(write: Write) -> None:
    # What `kubectl get sa,nodes -A -o yaml` prints, trimmed of nothing but volume.
    path = write(
        "dump.yaml",
        """\
        apiVersion: v1
        kind: List
        metadata: {resourceVersion: ""}
        items:
        - apiVersion: v1
          kind: ServiceAccount
          metadata:
            creationTimestamp: "2024-05-01T10:00:00Z"
            labels: {app: web, team: shop}
            name: web
            namespace: shop
            resourceVersion: "511"
            uid: 0b6b1f0c-0000-4000-8000-000000000010
          automountServiceAccountToken: false
          imagePullSecrets: [{name: registry}]
          secrets: [{name: web-token-x7k2p}]
        - apiVersion: v1
          kind: ServiceAccount
          metadata: {name: default, namespace: shop}
        - apiVersion: v1
          kind: Node
          metadata:
            annotations: {node.alpha.kubernetes.io/ttl: "0", volumes.kubernetes.io/controller-managed-attach-detach: "true"}
            labels:
              kubernetes.io/arch: amd64
              kubernetes.io/hostname: worker-1
              kubernetes.io/os: linux
              node-role.kubernetes.io/worker: ""
            name: worker-1
            resourceVersion: "90210"
            uid: 0b6b1f0c-0000-4000-8000-000000000020
          spec:
            podCIDR: 10.244.1.0/24
            podCIDRs: [10.244.1.0/24, "fd00:10:244:1::/64"]
            providerID: kind://docker/kind/worker-1
            taints: [{effect: NoSchedule, key: dedicated, value: infra}]
          status:
            addresses:
            - {address: 172.18.0.3, type: InternalIP}
            - {address: "fc00:f853:ccd:e793::3", type: InternalIP}
            - {address: 203.0.113.7, type: ExternalIP}
            - {address: 172.18.0.3, type: ExternalIP}
            - {address: worker-1, type: Hostname}
            - {address: worker-1.example.internal, type: InternalDNS}
            allocatable: {cpu: "8", memory: 16Gi, pods: "110"}
            capacity: {cpu: "8", memory: 16Gi, pods: "110"}
            conditions:
            - {type: Ready, status: "True", reason: KubeletReady, message: kubelet is posting ready status}
            daemonEndpoints: {kubeletEndpoint: {Port: 10250}}
            images: [{names: ["registry.k8s.io/pause:3.9"], sizeBytes: 321520}]
            nodeInfo: {architecture: amd64, kubeletVersion: v1.30.0, operatingSystem: linux}
        """,
    )
    loaded = load_inventory([path])
    inv = loaded.inventory
    assert [(a.namespace, a.name, dict(a.labels)) for a in inv.service_accounts] == [
        ("shop", "default", {}),
        ("shop", "web", {"app": "web", "team": "shop"}),
    ]
    (node,) = inv.nodes
    assert (node.name, node.labels["kubernetes.io/hostname"]) == ("worker-1", "worker-1")
    # InternalIP and ExternalIP addresses, each once; host names are not addresses.
    assert node.addresses == tuple(ip_address(a) for a in ("172.18.0.3", "fc00:f853:ccd:e793::3", "203.0.113.7"))
    assert node.location is not None and node.location.line == 20
    assert loaded.warnings == []


def test_service_account_defaults_to_the_default_namespace_and_node_may_have_no_status(write: Write) -> None:
    path = write(
        "x.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
    )
    inv = load_inventory([path]).inventory
    assert [(a.namespace, a.name) for a in inv.service_accounts] == [("default", "robot")]
    assert [(n.name, n.addresses, dict(n.labels)) for n in inv.nodes] == [("n1", (), {})]
