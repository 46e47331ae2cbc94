"""Generate a realistic, deterministic Kubernetes cluster as YAML manifests, for benchmarks.

Run:

    .venv/bin/python bench/generate.py --pods 1000 --policies 200 --seed 1 --out bench/out/c1000

The same arguments always write the same bytes. The directory gets:

    namespaces.yaml      every Namespace (labels: team, env; kubernetes.io/metadata.name)
    <namespace>.yaml     that namespace's Services, Pods and NetworkPolicies (multi-document)
    GENERATED.txt        the command, the generator's checksum and the counts (not YAML, so
                         netfence does not read it; bench_matrix.py uses it to reuse a cluster)

What is in it:

- About N/50 namespaces: `kube-system` (CoreDNS: `dns` 53/UDP, `dns-tcp` 53/TCP),
  `monitoring` (Prometheus, Grafana, Alertmanager), `ingress-nginx` (the controller), and
  application namespaces named `<team>-<env>` labelled `team` and `env` (payments namespaces also
  `pci: "true"`).
- Exactly N pods. Application namespaces hold Deployments (pods named like
  `checkout-7d5f9c6b8-x2k4q`, with `pod-template-hash`) and StatefulSets (`postgres-0`). Pods are
  labelled `app`, `tier` (web, api, worker, db, cache, queue) and `env`; they declare named
  containerPorts: `http` 8080 (or 80), `grpc` 9090, `metrics` 9100, datastore ports. Every pod
  has a node (`node-NN`, pod CIDR 10.244.K.0/24) and a distinct podIP in 10.244.0.0/14 (beyond 1,024 nodes, in 100.64.0.0/10); node
  addresses are in 10.0.0.0/16, service cluster IPs in 10.96.0.0/12.
- One Service per workload (selector `app`, targetPort by name).
- Exactly M NetworkPolicies: a `default-deny-ingress` per application namespace; a
  `default-deny-egress` (with the DNS exception to kube-system 53/UDP and 53/TCP) in prod
  namespaces; then allow rules spread over the application namespaces: podSelector peers,
  namespaceSelector peers, both in one peer, two peers (OR), matchExpressions (In, NotIn,
  Exists), ipBlock with except, named ports, numeric ports, endPort ranges, egress rules, and
  policies with policyTypes omitted. If M is smaller than the number of default-deny policies,
  only the first M are written.
- With `--kinds all`, about a tenth of the M policies are of the other kinds netfence reads: a
  Calico Tier `security` (order 100) with GlobalNetworkPolicies that Deny and Log traffic from
  dev namespaces into prod pods and Pass the rest on; Calico NetworkPolicies in the default tier
  (order 500) with selector expressions and notPorts; AdminNetworkPolicies (Deny, Pass, Allow by
  namespace labels, priorities 10, 20, ...); one BaselineAdminNetworkPolicy. The other policies
  stay NetworkPolicies.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Dumper = yaml.SafeDumper

NAME_LABEL = "kubernetes.io/metadata.name"
#: The alphabet Kubernetes uses for generated name suffixes (no vowels, no 0/1/3).
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

TEAMS = [
    "payments", "checkout", "catalog", "search", "identity", "orders", "shipping",
    "growth", "data", "ml", "support", "billing", "content", "risk",
]  # fmt: skip
ENVS = ["prod", "staging", "dev"]
PLATFORM_TEAM = "platform"

#: (app name, tier): the workloads an application namespace draws from.
WEB_APPS = ["storefront", "web", "admin-ui", "dashboard", "portal", "docs"]
API_APPS = [
    "checkout", "cart", "catalog", "search", "auth", "payments", "orders", "inventory",
    "shipping", "pricing", "profile", "reviews", "recommendations", "ledger", "billing",
    "accounts", "gateway", "notifications", "sessions", "fraud",
]  # fmt: skip
WORKER_APPS = ["email-worker", "indexer", "scheduler", "reconciler", "exporter", "thumbnailer"]
#: Datastores run as StatefulSets: (app, tier, port name, port number).
DATASTORES = [
    ("postgres", "db", "postgres", 5432),
    ("mysql", "db", "mysql", 3306),
    ("redis", "cache", "redis", 6379),
    ("kafka", "queue", "kafka", 9092),
]


@dataclass
class Port:
    name: str
    number: int
    protocol: str = "TCP"


@dataclass
class Workload:
    """A Deployment or StatefulSet: its pods share labels and ports."""

    name: str
    tier: str
    kind: str  # Deployment | StatefulSet
    replicas: int
    #: Containers: (name, image, ports).
    containers: list[tuple[str, str, list[Port]]]
    labels: dict[str, str] = field(default_factory=dict)
    service_ports: list[dict[str, Any]] = field(default_factory=list)

    def ports(self) -> list[Port]:
        return [p for _, _, ports in self.containers for p in ports]

    def port(self, name: str) -> Port | None:
        return next((p for p in self.ports() if p.name == name), None)


@dataclass
class NamespaceSpec:
    name: str
    team: str
    env: str
    system: bool = False
    extra_labels: dict[str, str] = field(default_factory=dict)
    workloads: list[Workload] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    default_deny_egress: bool = False

    @property
    def labels(self) -> dict[str, str]:
        return {NAME_LABEL: self.name, "team": self.team, "env": self.env, **self.extra_labels}

    def by_tier(self, *tiers: str) -> list[Workload]:
        return [w for w in self.workloads if w.tier in tiers]

    def policy_names(self) -> set[str]:
        return {p["metadata"]["name"] for p in self.policies}


class Cluster:
    """Everything generated, with the random source and address allocators."""

    def __init__(self, pods: int, policies: int, seed: int, kinds: str = "networkpolicy") -> None:
        self.n_pods = pods
        self.n_policies = policies
        self.seed = seed
        self.kinds = kinds
        #: Cluster-scoped objects (Tier, GlobalNetworkPolicy, AdminNetworkPolicy, ...).
        self.cluster_objects: list[dict[str, Any]] = []
        self.rng = random.Random(seed)
        self.namespaces: list[NamespaceSpec] = []
        self.nodes = [f"node-{i:02d}" for i in range(max(3, -(-pods // 30)))]
        self._node_next = [2] * len(self.nodes)  # next host number in each node's /24
        self._service_next = 11  # 10.96.0.10 is kube-dns

    # --- names and addresses -----------------------------------------------------------------

    def suffix(self, length: int) -> str:
        return "".join(self.rng.choice(SUFFIX_ALPHABET) for _ in range(length))

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def node_ip(self, node: int) -> str:
        return f"10.0.{node // 250}.{node % 250 + 4}"

    def pod_ip(self) -> tuple[int, str]:
        """A node with room left and the next free address in its pod CIDR: 10.244.K.0/24 for the
        first 1,024 nodes (10.244.0.0/14), then 100.64.K.0/24 (more than ~30,000 pods)."""
        while True:
            node = self.rng.randrange(len(self.nodes))
            host = self._node_next[node]
            if host <= 254:
                self._node_next[node] += 1
                if node < 1024:
                    return node, f"10.{244 + node // 256}.{node % 256}.{host}"
                return node, f"100.{64 + (node - 1024) // 256}.{(node - 1024) % 256}.{host}"

    def service_ip(self) -> str:
        n = self._service_next
        self._service_next += 1
        return f"10.{96 + n // 65536}.{n // 256 % 256}.{n % 256}"

    # --- generation ----------------------------------------------------------------------------

    def generate(self) -> None:
        self._namespaces()
        self._workloads()
        for ns in self.namespaces:
            for workload in ns.workloads:
                self._materialize(ns, workload)
        self._policies()

    def _namespaces(self) -> None:
        system = [
            NamespaceSpec("kube-system", PLATFORM_TEAM, "prod", system=True),
            NamespaceSpec("monitoring", PLATFORM_TEAM, "prod", system=True),
            NamespaceSpec("ingress-nginx", PLATFORM_TEAM, "prod", system=True),
        ]
        wanted = max(1, round(self.n_pods / 50) - len(system))
        combos = [(t, e) for t in TEAMS for e in ENVS]
        self.rng.shuffle(combos)
        apps: list[NamespaceSpec] = []
        for i in range(wanted):
            team, env = combos[i % len(combos)]
            name = f"{team}-{env}" if i < len(combos) else f"{team}-{env}-{i // len(combos) + 1}"
            extra = {"pci": "true"} if team in ("payments", "billing") else {}
            apps.append(NamespaceSpec(name, team, env, extra_labels=extra))
        self.namespaces = sorted(system + apps, key=lambda n: n.name)

    def _workloads(self) -> None:
        budget = self.n_pods
        scale = max(1, self.n_pods // 250)
        for ns in self.namespaces:
            if ns.name == "kube-system":
                dns = _workload("coredns", "dns", "Deployment", min(budget, 2 * scale), "coredns",
                                "registry.k8s.io/coredns/coredns:v1.11.1",
                                [Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"), Port("metrics", 9153)])
                dns.labels = {"k8s-app": "kube-dns", "tier": "dns"}
                dns.service_ports = [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ]
                ns.workloads = [dns]
            elif ns.name == "monitoring":
                ns.workloads = [
                    _workload("prometheus", "monitoring", "StatefulSet", scale, "prometheus",
                              "quay.io/prometheus/prometheus:v2.51.0", [Port("web", 9090)]),
                    _workload("alertmanager", "monitoring", "StatefulSet", 1, "alertmanager",
                              "quay.io/prometheus/alertmanager:v0.27.0", [Port("web", 9093)]),
                    _workload("grafana", "web", "Deployment", 1, "grafana",
                              "grafana/grafana:10.4.1", [Port("http", 3000)]),
                ]
            elif ns.name == "ingress-nginx":
                controller = _workload("ingress-nginx-controller", "edge", "Deployment", 2 * scale, "controller",
                                       "registry.k8s.io/ingress-nginx/controller:v1.10.0",
                                       [Port("http", 80), Port("https", 443), Port("metrics", 10254)])
                controller.labels = {"app.kubernetes.io/name": "ingress-nginx",
                                     "app.kubernetes.io/component": "controller", "tier": "edge"}
                ns.workloads = [controller]
            for w in ns.workloads:
                w.replicas = min(w.replicas, budget)
                budget -= w.replicas
            ns.workloads = [w for w in ns.workloads if w.replicas]
        # The rest of the pods go to application namespaces, with some jitter in size.
        apps = [ns for ns in self.namespaces if not ns.system]
        weights = [self.rng.uniform(0.6, 1.4) for _ in apps]
        shares = [int(budget * w / sum(weights)) for w in weights]
        for i in range(budget - sum(shares)):
            shares[i % len(shares)] += 1
        for ns, share in zip(apps, shares):
            ns.workloads = self._app_workloads(ns, share)

    def _app_workloads(self, ns: NamespaceSpec, pods: int) -> list[Workload]:
        rng = self.rng
        plan: list[tuple[str, str]] = []  # (app, tier) in the order they get pods
        if rng.random() < 0.8:
            plan.append((rng.choice(WEB_APPS), "web"))
        apis = rng.sample(API_APPS, k=len(API_APPS))
        plan += [(a, "api") for a in apis[: rng.randint(2, 5)]]
        plan += [(w, "worker") for w in rng.sample(WORKER_APPS, k=rng.randint(0, 2))]
        stores = rng.sample(DATASTORES, k=rng.randint(1, 2))
        plan += [(s[0], s[1]) for s in stores]
        # More API services while there are pods left to place.
        plan += [(a, "api") for a in apis[len(plan):]]
        workloads: list[Workload] = []
        left = pods
        for app, tier in plan:
            if left <= 0:
                break
            replicas = {"web": rng.randint(2, 4), "api": rng.randint(2, 6), "worker": rng.randint(1, 3)}.get(
                tier, rng.randint(1, 3)
            )
            replicas = min(replicas, left)
            left -= replicas
            workloads.append(self._app_workload(ns, app, tier, replicas))
        # Pods still left: more replicas, round robin over the stateless workloads.
        stateless = [w for w in workloads if w.kind == "Deployment"] or workloads
        i = 0
        while left > 0 and stateless:
            stateless[i % len(stateless)].replicas += 1
            left -= 1
            i += 1
        return workloads

    def _app_workload(self, ns: NamespaceSpec, app: str, tier: str, replicas: int) -> Workload:
        rng = self.rng
        image = f"registry.example.com/{ns.team}/{app}:1.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        store = next((s for s in DATASTORES if s[0] == app), None)
        if store is not None:
            main = [Port(store[2], store[3])]
            containers = [
                (app, f"docker.io/library/{app}:{rng.randint(5, 16)}", main),
                ("exporter", f"quay.io/prometheuscommunity/{app}-exporter:v0.15.0", [Port("metrics", 9100)]),
            ]
            w = Workload(app, tier, "StatefulSet", replicas, containers)
            w.service_ports = [{"name": store[2], "port": store[3], "protocol": "TCP", "targetPort": store[2]}]
            return w
        ports: list[Port] = []
        if tier in ("web", "api") or rng.random() < 0.3:
            ports.append(Port("http", 8080 if rng.random() < 0.7 else 80))
        if tier == "api" and rng.random() < 0.6:
            ports.append(Port("grpc", 9090))
        ports.append(Port("metrics", 9100))
        w = Workload(app, tier, "Deployment", replicas, [(app, image, ports)])
        for p in ports:
            if p.name == "http":
                w.service_ports.append({"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"})
            elif p.name == "grpc":
                w.service_ports.append({"name": "grpc", "port": 9090, "protocol": "TCP", "targetPort": "grpc"})
        return w

    def _materialize(self, ns: NamespaceSpec, w: Workload) -> None:
        """The workload's Pods and Service, as the API server would print them."""
        base = w.labels or {"app": w.name, "tier": w.tier}
        base = {**base, "env": ns.env}
        w.labels = base
        if w.kind == "Deployment":
            rs = f"{w.name}-{self.suffix(self.rng.choice((8, 9, 10)))}"
            owner: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs}
            names = [(f"{rs}-{self.suffix(5)}", {"pod-template-hash": rs[len(w.name) + 1 :]}) for _ in range(w.replicas)]
        else:
            revision = f"{w.name}-{self.suffix(10)}"
            owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": w.name}
            names = [
                (f"{w.name}-{i}", {"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": f"{w.name}-{i}"})
                for i in range(w.replicas)
            ]
        owner = {**owner, "uid": self.uid(), "controller": True, "blockOwnerDeletion": True}
        for name, extra in names:
            node, ip = self.pod_ip()
            containers = []
            for cname, image, ports in w.containers:
                container: dict[str, Any] = {"name": cname, "image": image}
                if ports:
                    container["ports"] = [
                        {"name": p.name, "containerPort": p.number, "protocol": p.protocol} for p in ports
                    ]
                container["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
                containers.append(container)
            ns.pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": name,
                        "namespace": ns.name,
                        "labels": {**base, **extra},
                        "ownerReferences": [owner],
                        "uid": self.uid(),
                    },
                    "spec": {
                        "nodeName": self.nodes[node],
                        "serviceAccountName": w.name if not ns.system else "default",
                        "containers": containers,
                        "restartPolicy": "Always",
                    },
                    "status": {
                        "phase": "Running",
                        "hostIP": self.node_ip(node),
                        "podIP": ip,
                        "podIPs": [{"ip": ip}],
                    },
                }
            )
        if w.service_ports or w.ports():
            service_ports = w.service_ports or [
                {"name": p.name, "port": p.number, "protocol": p.protocol, "targetPort": p.name} for p in w.ports()
            ]
            selector = {k: v for k, v in base.items() if k != "env"}
            ip = "10.96.0.10" if w.name == "coredns" else self.service_ip()
            ns.services.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "kube-dns" if w.name == "coredns" else w.name, "namespace": ns.name,
                                 "labels": {k: v for k, v in base.items() if k != "tier"}},
                    "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "selector": selector,
                             "ports": service_ports},
                }
            )

    # --- policies ------------------------------------------------------------------------------

    def _policies(self) -> None:
        other_kinds = 0
        if self.kinds == "all":
            other_kinds = self._other_kinds(max(4, self.n_policies // 10))
        self._network_policies(self.n_policies - other_kinds)

    def _other_kinds(self, budget: int) -> int:
        """Calico and AdminNetworkPolicy objects, `budget` policies at most; how many were made."""
        rng = self.rng
        apps = [ns for ns in self.namespaces if not ns.system]
        made: list[dict[str, Any]] = [
            {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "security"}, "spec": {"order": 100}},
            {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
             "metadata": {"name": "security.prod-from-dev"},
             "spec": {"tier": "security", "order": 10, "selector": "env == 'prod'", "types": ["Ingress"],
                      "ingress": [{"action": "Log", "source": {"namespaceSelector": "env == 'dev'"}},
                                  {"action": "Deny", "source": {"namespaceSelector": "env == 'dev'"}},
                                  {"action": "Pass"}]}},
            {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
             "metadata": {"name": "default"},
             "spec": {"subject": {"namespaces": {"matchLabels": {"env": "prod"}}},
                      "ingress": [{"name": "no-staging", "action": "Deny",
                                   "from": [{"namespaces": {"matchLabels": {"env": "staging"}}}]}]}},
        ]  # fmt: skip
        count = 2  # the Tier is not a policy
        priority = 10
        while count < budget:
            choice = rng.random()
            if choice < 0.5:
                ns = rng.choice(apps)
                store = self._pick(ns.by_tier("db", "cache", "queue"))
                if store is None:
                    continue
                ns.policies.append(
                    {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                     "metadata": {"name": f"calico-{store.name}-{count}", "namespace": ns.name},
                     "spec": {"order": 500, "selector": f"app == '{store.name}'", "types": ["Ingress"],
                              "ingress": [{"action": "Allow", "protocol": "TCP",
                                           "source": {"selector": "tier in {'api', 'worker'} && !has(canary)"},
                                           "destination": {"notPorts": [9100]}},
                                          {"action": "Deny", "source": {"selector": "tier == 'web'"}}]}}
                )  # fmt: skip
            else:
                team = rng.choice(TEAMS)
                action = rng.choice(["Deny", "Pass", "Allow"])
                made.append(
                    {"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
                     "metadata": {"name": f"{action.lower()}-{team}-from-{count}"},
                     "spec": {"priority": priority,
                              "subject": {"namespaces": {"matchLabels": {"team": team}}},
                              "ingress": [{"name": f"{action.lower()}-other-teams", "action": action,
                                           "from": [{"namespaces": {"matchExpressions": [
                                               {"key": "team", "operator": "NotIn", "values": [team, PLATFORM_TEAM]}]}}],
                                           "ports": [{"portNumber": {"protocol": "TCP", "port": 9090}}]}]}}
                )  # fmt: skip
                priority += 10
            count += 1
        self.cluster_objects = made
        return count

    def _network_policies(self, n_policies: int) -> None:
        apps = [ns for ns in self.namespaces if not ns.system]
        baseline: list[tuple[NamespaceSpec, dict[str, Any]]] = []
        for ns in apps:
            baseline.append((ns, policy(ns, "default-deny-ingress", {}, ["Ingress"])))
        for ns in apps:
            if ns.env == "prod":
                ns.default_deny_egress = True
                baseline.append((ns, policy(ns, "default-deny-egress", {}, ["Egress"], egress=[DNS_RULE])))
        for ns, deny in baseline[: n_policies]:
            ns.policies.append(deny)
        remaining = n_policies - min(n_policies, len(baseline))
        order = list(apps)
        self.rng.shuffle(order)
        attempts = 0
        while remaining > 0 and attempts < 50 * n_policies + 100:
            ns = order[attempts % len(order)]
            attempts += 1
            body = self._allow_policy(ns)
            if body is None:
                continue
            name = body["metadata"]["name"]
            taken = ns.policy_names()
            k = 2
            while body["metadata"]["name"] in taken:
                body["metadata"]["name"] = f"{name}-{k}"
                k += 1
            ns.policies.append(body)
            remaining -= 1

    def _allow_policy(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        """One allow policy from a weighted choice of templates; None when it does not fit `ns`."""
        templates: list[tuple[float, Callable[[NamespaceSpec], dict[str, Any] | None]]] = [
            (3, self._web_to_api),
            (2, self._api_to_datastore),
            (2, self._from_ingress_controller),
            (1.5, self._prometheus_scrape),
            (2, self._from_team),
            (1, self._from_non_dev),
            (1, self._from_pci),
            (1, self._ip_block_ingress),
            (1, self._port_range),
            (1, self._same_namespace),
            (1, self._two_peers),
            (1, self._no_policy_types),
            (1, self._all_namespaces_gateway),
            (3 if ns.default_deny_egress else 0.5, self._egress_to_datastores),
            (3 if ns.default_deny_egress else 0.5, self._egress_to_team),
            (1 if ns.default_deny_egress else 0.3, self._egress_external),
            (1 if ns.default_deny_egress else 0.2, self._egress_same_namespace),
        ]
        weights = [w for w, _ in templates]
        template = self.rng.choices([t for _, t in templates], weights=weights)[0]
        return template(ns)

    def _pick(self, items: list[Workload]) -> Workload | None:
        return self.rng.choice(items) if items else None

    def _other_team(self, ns: NamespaceSpec) -> str:
        teams = sorted({o.team for o in self.namespaces if not o.system and o.team != ns.team}) or [ns.team]
        return self.rng.choice(teams)

    def _web_to_api(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        web, api = self._pick(ns.by_tier("web")), self._pick(ns.by_tier("api"))
        if web is None or api is None:
            return None
        return policy(ns, f"allow-{web.name}-to-{api.name}", {"matchLabels": {"app": api.name}}, ["Ingress"],
                      ingress=[{"from": [{"podSelector": {"matchLabels": {"app": web.name}}}],
                                "ports": [{"protocol": "TCP", "port": "http"}]}])

    def _api_to_datastore(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        store = self._pick(ns.by_tier("db", "cache", "queue"))
        if store is None:
            return None
        port = store.ports()[0]
        return policy(ns, f"allow-to-{store.name}", {"matchLabels": {"app": store.name, "tier": store.tier}},
                      ["Ingress"],
                      ingress=[{"from": [{"podSelector": {"matchExpressions": [
                          {"key": "tier", "operator": "In", "values": ["api", "worker"]}]}}],
                                "ports": [{"protocol": "TCP", "port": port.number}]}])

    def _from_ingress_controller(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        if not ns.by_tier("web", "api"):
            return None
        selector = {"matchLabels": {"tier": "web"}} if ns.by_tier("web") else {"matchLabels": {"app": ns.by_tier("api")[0].name}}
        return policy(ns, "allow-from-ingress-nginx", selector, ["Ingress"],
                      ingress=[{"from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "ingress-nginx"}},
                                          "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}}],
                                "ports": [{"protocol": "TCP", "port": "http"}]}])

    def _prometheus_scrape(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        return policy(ns, "allow-prometheus-scrape", {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                      ["Ingress"],
                      ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": PLATFORM_TEAM}},
                                          "podSelector": {"matchLabels": {"app": "prometheus"}}}],
                                "ports": [{"port": "metrics"}]}])

    def _from_team(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        api = self._pick(ns.by_tier("api"))
        if api is None:
            return None
        team = self._other_team(ns)
        envs = ["prod"] if ns.env == "prod" else ["staging", "dev"]
        port: dict[str, Any] = {"protocol": "TCP", "port": "grpc"} if api.port("grpc") else {"port": "http"}
        return policy(ns, f"allow-{api.name}-from-{team}", {"matchLabels": {"app": api.name}}, ["Ingress"],
                      ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": team},
                                                                "matchExpressions": [{"key": "env", "operator": "In", "values": envs}]},
                                          "podSelector": {"matchExpressions": [
                                              {"key": "tier", "operator": "In", "values": ["web", "api", "worker"]}]}}],
                                "ports": [port]}])

    def _from_non_dev(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        api = self._pick(ns.by_tier("api"))
        if api is None:
            return None
        return policy(ns, f"allow-{api.name}-from-non-dev", {"matchLabels": {"app": api.name}}, ["Ingress"],
                      ingress=[{"from": [{"namespaceSelector": {"matchExpressions": [
                          {"key": "env", "operator": "NotIn", "values": ["dev"]}]}}],
                                "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 9090}]}])

    def _from_pci(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        return policy(ns, "allow-api-from-pci", {"matchLabels": {"tier": "api"}}, ["Ingress"],
                      ingress=[{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "pci", "operator": "Exists"}]},
                                          "podSelector": {"matchLabels": {"tier": "api"}}}]}])

    def _ip_block_ingress(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        target = self._pick(ns.by_tier("web", "api"))
        if target is None:
            return None
        node = self.rng.randrange(min(256, len(self.nodes)))  # a node whose pod CIDR is in 10.244.0.0/16
        blocks = [
            {"cidr": "10.244.0.0/16", "except": [f"10.244.{node}.0/24"]},
            {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12", f"10.244.{node}.128/25"]},
            {"cidr": "192.168.0.0/16"},
            {"cidr": "172.16.0.0/12", "except": ["172.16.5.0/24"]},
        ]
        block = self.rng.choice(blocks)
        return policy(ns, f"allow-{target.name}-from-vpn", {"matchLabels": {"app": target.name}}, ["Ingress"],
                      ingress=[{"from": [{"ipBlock": block}],
                                "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 80}]}])

    def _port_range(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        target = self._pick(ns.by_tier("api", "worker"))
        if target is None:
            return None
        start, end = self.rng.choice([(8000, 8100), (9000, 9200), (70, 90), (8080, 8089)])
        return policy(ns, f"allow-{target.name}-port-range", {"matchLabels": {"app": target.name}}, ["Ingress"],
                      ingress=[{"from": [{"podSelector": {}}],
                                "ports": [{"protocol": "TCP", "port": start, "endPort": end}]}])

    def _same_namespace(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        return policy(ns, "allow-same-namespace", {}, ["Ingress"], ingress=[{"from": [{"podSelector": {}}]}])

    def _two_peers(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        api, web = self._pick(ns.by_tier("api")), self._pick(ns.by_tier("web", "worker"))
        if api is None or web is None:
            return None
        team = self._other_team(ns)
        return policy(ns, f"allow-{api.name}-from-{web.name}-or-{team}", {"matchLabels": {"app": api.name}}, ["Ingress"],
                      ingress=[{"from": [{"podSelector": {"matchLabels": {"app": web.name}}},
                                         {"namespaceSelector": {"matchLabels": {"team": team}}}],
                                "ports": [{"port": "http"}, {"protocol": "TCP", "port": 9100}]}])

    def _no_policy_types(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        """policyTypes omitted: Ingress, plus Egress because there is an egress rule."""
        worker = self._pick(ns.by_tier("worker", "api"))
        if worker is None:
            return None
        stores = ns.by_tier("db", "cache", "queue")
        egress_ports = [{"protocol": "TCP", "port": s.ports()[0].number} for s in stores] or [{"port": "http"}]
        return policy(ns, f"{worker.name}-traffic", {"matchLabels": {"app": worker.name, "tier": worker.tier}}, None,
                      ingress=[{"from": [{"podSelector": {"matchExpressions": [
                          {"key": "tier", "operator": "NotIn", "values": ["db", "cache", "queue"]}]}}],
                                "ports": [{"port": "metrics"}, {"port": "http"}]}],
                      egress=[{"to": [{"podSelector": {"matchExpressions": [
                          {"key": "tier", "operator": "In", "values": ["db", "cache", "queue"]}]}}],
                               "ports": egress_ports}, DNS_RULE])

    def _all_namespaces_gateway(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        api = self._pick(ns.by_tier("api"))
        if api is None:
            return None
        return policy(ns, f"allow-{api.name}-from-gateways", {"matchExpressions": [
            {"key": "app", "operator": "In", "values": [api.name]},
            {"key": "tier", "operator": "NotIn", "values": ["db", "cache"]}]}, ["Ingress"],
                      ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "gateway"}}}],
                                "ports": [{"protocol": "TCP", "port": "http"}, {"protocol": "TCP", "port": "grpc"}]}])

    def _egress_to_datastores(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        stores = ns.by_tier("db", "cache", "queue")
        if not stores:
            return None
        return policy(ns, "allow-egress-to-datastores", {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["api", "worker"]}]}, ["Egress"],
                      egress=[{"to": [{"podSelector": {"matchExpressions": [
                          {"key": "tier", "operator": "In", "values": ["db", "cache", "queue"]}]}}],
                               "ports": [{"protocol": "TCP", "port": s.ports()[0].number} for s in stores]}])

    def _egress_to_team(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        team = self._other_team(ns)
        return policy(ns, f"allow-egress-to-{team}-apis", {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]}]}, ["Egress"],
                      egress=[{"to": [{"namespaceSelector": {"matchLabels": {"team": team, "env": ns.env}},
                                       "podSelector": {"matchLabels": {"tier": "api"}}},
                                      {"podSelector": {"matchLabels": {"tier": "api"}}}],
                               "ports": [{"protocol": "TCP", "port": "grpc"}, {"protocol": "TCP", "port": "http"}]}])

    def _egress_external(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        api = self._pick(ns.by_tier("api"))
        if api is None:
            return None
        return policy(ns, f"allow-{api.name}-egress-internet", {"matchLabels": {"app": api.name}}, ["Egress"],
                      egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                                   "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                               "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 80}]}])

    def _egress_same_namespace(self, ns: NamespaceSpec) -> dict[str, Any] | None:
        return policy(ns, "allow-egress-same-namespace", {}, ["Egress"], egress=[{"to": [{"podSelector": {}}]}])

    # --- output --------------------------------------------------------------------------------

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.yaml"):
            old.unlink()
        namespaces = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns.name, "labels": ns.labels}}
            for ns in self.namespaces
        ]
        _dump(out / "namespaces.yaml", namespaces)
        (out / "cluster-policies.yaml").unlink(missing_ok=True)
        if self.cluster_objects:
            _dump(out / "cluster-policies.yaml", self.cluster_objects)
        for ns in self.namespaces:
            _dump(out / f"{ns.name}.yaml", ns.services + ns.pods + ns.policies)
        (out / "GENERATED.txt").write_text(self.summary() + "\n")

    def summary(self) -> str:
        pods = sum(len(ns.pods) for ns in self.namespaces)
        policies = sum(len(ns.policies) for ns in self.namespaces) + sum(
            o["kind"] != "Tier" for o in self.cluster_objects
        )
        services = sum(len(ns.services) for ns in self.namespaces)
        return (
            f"{command_line(self.n_pods, self.n_policies, self.seed, self.kinds)}\n"
            f"generator {generator_checksum()}\n"
            f"namespaces={len(self.namespaces)} pods={pods} services={services} policies={policies} "
            f"nodes={len(self.nodes)}"
        )


DNS_RULE: dict[str, Any] = {
    "to": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def command_line(pods: int, policies: int, seed: int, kinds: str = "networkpolicy") -> str:
    extra = f" --kinds {kinds}" if kinds != "networkpolicy" else ""
    return f"bench/generate.py --pods {pods} --policies {policies} --seed {seed}{extra}"


def generator_checksum() -> str:
    """Changes whenever this file does, so stale generated clusters are not reused."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _workload(name: str, tier: str, kind: str, replicas: int, container: str, image: str, ports: list[Port]) -> Workload:
    return Workload(name, tier, kind, replicas, [(container, image, ports)])


def policy(
    ns: NamespaceSpec,
    name: str,
    pod_selector: dict[str, Any],
    policy_types: list[str] | None,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pod_selector}
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns.name, "labels": {"team": ns.team}},
        "spec": spec,
    }


def _dump(path: Path, documents: list[dict[str, Any]]) -> None:
    # The dumper writes objects that appear twice (DNS_RULE) as YAML anchors; copy them apart.
    text = yaml.dump_all(copy.deepcopy(documents), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
    path.write_text(text)


def generate(pods: int, policies: int, seed: int, out: Path, kinds: str = "networkpolicy") -> Cluster:
    """Generate the cluster and write it to `out` (its *.yaml files are replaced)."""
    cluster = Cluster(pods, policies, seed, kinds)
    cluster.generate()
    cluster.write(out)
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000, help="number of pods (default 1000)")
    parser.add_argument("--policies", type=int, default=200, help="number of NetworkPolicies (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (its *.yaml files are replaced)")
    parser.add_argument("--kinds", choices=("networkpolicy", "all"), default="networkpolicy",
                        help="networkpolicy (default), or all: also Calico and AdminNetworkPolicy kinds")
    args = parser.parse_args(argv)
    if args.pods < 1 or args.policies < 0:
        parser.error("--pods must be at least 1 and --policies at least 0")
    cluster = generate(args.pods, args.policies, args.seed, args.out, args.kinds)
    print(cluster.summary().splitlines()[-1], "->", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
