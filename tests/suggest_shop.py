"""The shop cluster of the `suggest` tests: workloads with replicas, look-alike labels and hosts
outside the cluster; the flows observed in it, and what a suggestion from them must allow.

    shop/web-5d8f7-a1, -b2   app=web (Deployment replicas: pod-template-hash)      TCP 80
    shop/web-canary          app=web, track=canary (another workload)               TCP 80
    shop/api-0               app=api (StatefulSet: pod-name, revision hash)         TCP 8080
    shop/db-0                app=db, tier=backend                                   TCP 5432
    shop/cache               app=db, tier=cache                                     UDP 11211
    tools/toolbox            app=toolbox
    ext/lb (192.0.2.10), ext/payments (192.0.2.20, TCP 443): hosts outside the cluster
"""

from __future__ import annotations

from netfence.model.ports import FlowPort, Protocol

CLUSTER = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: tools}
---
apiVersion: v1
kind: Pod
metadata: {name: web-5d8f7-a1, namespace: shop, labels: {app: web, pod-template-hash: 5d8f7}}
spec: {nodeName: n1, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {podIP: 10.60.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: web-5d8f7-b2, namespace: shop, labels: {app: web, pod-template-hash: 5d8f7}}
spec: {nodeName: n2, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {podIP: 10.60.2.12}
---
apiVersion: v1
kind: Pod
metadata: {name: web-canary, namespace: shop, labels: {app: web, track: canary}}
spec: {nodeName: n2, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {podIP: 10.60.2.13}
---
apiVersion: v1
kind: Pod
metadata:
  name: api-0
  namespace: shop
  labels: {app: api, statefulset.kubernetes.io/pod-name: api-0, controller-revision-hash: api-7c9}
spec: {nodeName: n1, containers: [{name: c, image: api, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.60.1.21}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop, labels: {app: db, tier: backend, statefulset.kubernetes.io/pod-name: db-0}}
spec: {nodeName: n2, containers: [{name: c, image: postgres, ports: [{containerPort: 5432}]}]}
status: {podIP: 10.60.2.31}
---
apiVersion: v1
kind: Pod
metadata: {name: cache, namespace: shop, labels: {app: db, tier: cache}}
spec: {nodeName: n1, containers: [{name: c, image: memcached, ports: [{containerPort: 11211, protocol: UDP}]}]}
status: {podIP: 10.60.1.32}
---
apiVersion: v1
kind: Pod
metadata: {name: toolbox, namespace: tools, labels: {app: toolbox}}
spec: {nodeName: n1, containers: [{name: c, image: busybox}]}
status: {podIP: 10.60.1.41}
---
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {name: lb, labels: {app: lb}}
spec: {addresses: [192.0.2.10]}
---
apiVersion: netfence.dev/v1alpha1
kind: ExternalWorkload
metadata: {name: payments, labels: {app: payments}}
spec: {addresses: [192.0.2.20], ports: [{port: 443}]}
"""

HTTP = FlowPort(Protocol.TCP, 80)
HTTPS = FlowPort(Protocol.TCP, 443)
POSTGRES = FlowPort(Protocol.TCP, 5432)
API = FlowPort(Protocol.TCP, 8080)
MEMCACHE = FlowPort(Protocol.UDP, 11211)
PORTS = (HTTP, HTTPS, POSTGRES, API, MEMCACHE)

#: The flows the tests make happen (and record): ends by id, as `lab record` writes them.
OBSERVED = (
    ("tools/toolbox", "shop/web-5d8f7-a1", HTTP),
    ("shop/web-5d8f7-a1", "shop/api-0", API),
    ("shop/web-5d8f7-b2", "shop/api-0", API),
    ("shop/api-0", "shop/db-0", POSTGRES),
    ("shop/api-0", "shop/cache", MEMCACHE),
    ("ext/lb", "shop/web-5d8f7-b2", HTTP),
    ("shop/api-0", "ext/payments", HTTPS),
)

#: Pods by workload: what a policy written for one replica also admits for the others.
WORKLOADS = (
    ("shop/web-5d8f7-a1", "shop/web-5d8f7-b2"),
    ("shop/web-canary",),
    ("shop/api-0",),
    ("shop/db-0",),
    ("shop/cache",),
    ("tools/toolbox",),
    ("ext/lb",),
    ("ext/payments",),
)

#: Flows the suggestion allows beyond OBSERVED: to or from the other replica of an observed flow's end.
GENERALIZED = {
    ("tools/toolbox", "shop/web-5d8f7-b2", HTTP),
    ("ext/lb", "shop/web-5d8f7-a1", HTTP),
}


def replicas(item: str) -> tuple[str, ...]:
    return next(group for group in WORKLOADS if item in group)


def expected_allowed() -> set[tuple[str, str, FlowPort]]:
    """Every flow between two different workload members that the suggestion allows."""
    found = {(s, d, port) for source, destination, port in OBSERVED for s in replicas(source) for d in replicas(destination)}
    assert found == set(OBSERVED) | GENERALIZED
    return found


def expected_verdict(source: str, destination: str, port: FlowPort, *, egress: bool) -> bool:
    """What the shop under the suggestion (egress policies too when `egress`) does with one flow
    between pods and external hosts."""
    if source == destination or (source, destination, port) in expected_allowed():
        return True
    if source.startswith("ext/") and destination.startswith("ext/"):
        return True  # no policy selects a host outside the cluster
    return destination.startswith("ext/") and not egress  # pods' egress is unrestricted without --egress
