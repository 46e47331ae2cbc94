"""One cluster for the flow log tests (unit, CLI and kernel): every kind of deciding point.

Node node-a runs a-near, b-near and d-near; node-b runs a-far, c-far and x-far.

- b is isolated for ingress by NetworkPolicy shop/b-from-a: TCP and UDP 80 from app=a;
- AdminNetworkPolicy deny-c (priority 10) denies ingress from app=c to b: a rule decides;
- AdminNetworkPolicy deny-x (priority 20) denies ingress from app=x to d, and nothing else
  selects d: x -> d is denied by a rule, a -> d allowed because no tier decided;
- x -> b is denied at the end of the default tier (NetworkPolicy isolation).
"""

from __future__ import annotations

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: a-near, namespace: shop, labels: {app: a}}
spec: {nodeName: node-a, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {phase: Running, podIP: 10.60.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: b-near, namespace: shop, labels: {app: b}}
spec: {nodeName: node-a, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {phase: Running, podIP: 10.60.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: d-near, namespace: shop, labels: {app: d}}
spec: {nodeName: node-a, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {phase: Running, podIP: 10.60.0.4}
---
apiVersion: v1
kind: Pod
metadata: {name: a-far, namespace: shop, labels: {app: a}}
spec: {nodeName: node-b, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {phase: Running, podIP: 10.60.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: c-far, namespace: shop, labels: {app: c}}
spec: {nodeName: node-b, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {phase: Running, podIP: 10.60.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: x-far, namespace: shop, labels: {app: x}}
spec: {nodeName: node-b, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {phase: Running, podIP: 10.60.1.4}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-from-a, namespace: shop}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: a}}}]
    ports: [{protocol: TCP, port: 80}, {protocol: UDP, port: 80}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-c}
spec:
  priority: 10
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}}
  ingress:
  - name: no-c
    action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: c}}}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-x}
spec:
  priority: 20
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: d}}}}
  ingress:
  - name: no-x
    action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: x}}}}]
"""
