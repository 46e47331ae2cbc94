"""Loading -f inputs: files, directories, stdin, multi-document YAML, List kinds, skipped kinds."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from netfence.errors import InputErrors
from netfence.model.endpoints import NAMESPACE_NAME_LABEL
from netfence.sources.load import load_inventory

Write = Callable[[str, str], str]

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {name}}}}}
spec: {{containers: [{{name: c, ports: [{{containerPort: 80, name: http}}]}}]}}
status: {{podIP: {ip}}}
"""


def test_multi_document_file_loads_every_object(write: Write) -> None:
    path = write("a.yaml", POD.format(name="a", ns="x", ip="10.0.0.1") + "---\n" + POD.format(name="b", ns="x", ip="10.0.0.2"))
    inventory = load_inventory([path]).inventory
    assert [p.id for p in inventory.pods] == ["x/a", "x/b"]


def test_kubectl_list_dump_loads_as_it_is(write: Write) -> None:
    # What `kubectl get ns,pods,svc,netpol -A -o yaml` prints, trimmed of nothing but volume.
    path = write(
        "dump.yaml",
        """\
        apiVersion: v1
        items:
        - apiVersion: v1
          kind: Namespace
          metadata:
            creationTimestamp: "2024-05-01T10:00:00Z"
            labels: {kubernetes.io/metadata.name: shop}
            name: shop
            resourceVersion: "412"
            uid: 0b6b1f0c-0000-4000-8000-000000000001
          spec: {finalizers: [kubernetes]}
          status: {phase: Active}
        - apiVersion: v1
          kind: Pod
          metadata:
            annotations: {cni.projectcalico.org/podIP: 10.1.2.3/32}
            generateName: web-5d8f7c9b4-
            labels: {app: web, pod-template-hash: 5d8f7c9b4}
            managedFields:
            - {apiVersion: v1, fieldsType: FieldsV1, manager: kube-controller-manager, operation: Update}
            name: web-5d8f7c9b4-abcde
            namespace: shop
            ownerReferences:
            - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f7c9b4, uid: x, controller: true}
          spec:
            containers:
            - image: nginx:1.25
              imagePullPolicy: IfNotPresent
              name: nginx
              ports: [{containerPort: 8080, name: http, protocol: TCP}]
              resources: {}
              volumeMounts: [{mountPath: /var/run/secrets, name: kube-api-access, readOnly: true}]
            dnsPolicy: ClusterFirst
            nodeName: worker-1
            serviceAccountName: web
            tolerations: [{effect: NoExecute, key: node.kubernetes.io/not-ready, operator: Exists}]
          status:
            conditions: [{type: Ready, status: "True"}]
            hostIP: 192.168.0.11
            phase: Running
            podIP: 10.1.2.3
            podIPs: [{ip: 10.1.2.3}, {ip: "fd00::3"}]
        - apiVersion: v1
          kind: Service
          metadata: {name: web, namespace: shop}
          spec:
            clusterIP: 10.96.0.10
            clusterIPs: [10.96.0.10]
            internalTrafficPolicy: Cluster
            ipFamilies: [IPv4]
            ports: [{name: http, port: 80, protocol: TCP, targetPort: http}]
            selector: {app: web}
            sessionAffinity: None
            type: ClusterIP
          status: {loadBalancer: {}}
        - apiVersion: networking.k8s.io/v1
          kind: NetworkPolicy
          metadata:
            annotations:
              kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"networking.k8s.io/v1"}'
            creationTimestamp: "2024-05-01T10:00:00Z"
            generation: 1
            name: web
            namespace: shop
            resourceVersion: "999"
            uid: 0b6b1f0c-0000-4000-8000-000000000002
          spec:
            ingress: [{ports: [{port: http, protocol: TCP}]}]
            podSelector: {matchLabels: {app: web}}
            policyTypes: [Ingress]
        kind: List
        metadata: {resourceVersion: ""}
        """,
    )
    loaded = load_inventory([path])
    inv = loaded.inventory
    assert [n.name for n in inv.namespaces] == ["shop"]
    (pod,) = inv.pods
    assert [str(ip) for ip in pod.ips] == ["10.1.2.3", "fd00::3"]
    assert (pod.node, pod.service_account, pod.ports[0].name, pod.ports[0].port) == ("worker-1", "web", "http", 8080)
    (svc,) = inv.services
    assert svc.ports[0].target_port == "http" and [str(i) for i in svc.cluster_ips] == ["10.96.0.10"]
    assert [p.id for p in inv.policies] == ["shop/web"]
    assert loaded.warnings == []


def test_typed_list_items_get_kind_and_api_version_from_the_list(write: Write) -> None:
    path = write(
        "pods.yaml",
        """\
        apiVersion: v1
        kind: PodList
        items:
        - metadata: {name: a, namespace: x}
          status: {podIP: 10.0.0.1}
        """,
    )
    assert [p.id for p in load_inventory([path]).inventory.pods] == ["x/a"]


def test_directory_is_read_recursively_in_sorted_order_yaml_yml_and_json(write: Write, tmp_path: Path) -> None:
    write("cluster/b/pods.yml", POD.format(name="b", ns="x", ip="10.0.0.2"))
    write("cluster/a.yaml", POD.format(name="a", ns="x", ip="10.0.0.1"))
    pod_c = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c", "namespace": "x"}, "status": {"podIP": "10.0.0.3"}}
    write("cluster/c/pod.json", json.dumps(pod_c))
    write("cluster/README.md", "not: [yaml")
    inventory = load_inventory([str(tmp_path / "cluster")]).inventory
    assert [p.id for p in inventory.pods] == ["x/a", "x/b", "x/c"]


def test_repeated_f_and_stdin(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("a.yaml", POD.format(name="a", ns="x", ip="10.0.0.1"))
    monkeypatch.setattr("sys.stdin", io.StringIO(POD.format(name="b", ns="x", ip="10.0.0.2")))
    inventory = load_inventory([path, "-"]).inventory
    assert [p.id for p in inventory.pods] == ["x/a", "x/b"]


def test_unknown_kinds_are_skipped_with_one_warning_per_kind(write: Write) -> None:
    deployments = "\n---\n".join(
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d{i}}}" for i in range(3)
    )
    path = write("x.yaml", deployments + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    loaded = load_inventory([path])
    assert loaded.warnings == [
        "warning: skipped 1 ConfigMap object (v1): kind not understood",
        "warning: skipped 3 Deployment objects (apps/v1): kind not understood",
    ]


def test_empty_documents_and_empty_lists_are_fine(write: Write) -> None:
    path = write("x.yaml", "---\n---\n# nothing\n---\napiVersion: v1\nkind: List\nitems: []\n")
    loaded = load_inventory([path])
    assert loaded.inventory.pods == () and loaded.warnings == []


def test_namespaces_carry_the_metadata_name_label_even_when_not_declared(write: Write) -> None:
    path = write("x.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: dev, labels: {team: a}}\n")
    inventory = load_inventory([path]).inventory
    assert dict(inventory.namespace("dev").labels) == {"team": "a", NAMESPACE_NAME_LABEL: "dev"}
    assert dict(inventory.namespace("elsewhere").labels) == {NAMESPACE_NAME_LABEL: "elsewhere"}


def test_pod_defaults_namespace_service_account_and_protocol(write: Write) -> None:
    path = write(
        "x.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: 53, protocol: UDP}, {containerPort: 80}]}]}\n",
    )
    (pod,) = load_inventory([path]).inventory.pods
    assert (pod.namespace, pod.service_account, [str(p.protocol) for p in pod.ports]) == ("default", "default", ["UDP", "TCP"])


def test_finished_pods_are_left_out(write: Write) -> None:
    path = write(
        "x.yaml",
        POD.format(name="a", ns="x", ip="10.0.0.1")
        + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: job-1, namespace: x}\nstatus: {phase: Succeeded}\n",
    )
    assert [p.id for p in load_inventory([path]).inventory.pods] == ["x/a"]


def test_problems_of_every_file_are_reported_together(write: Write) -> None:
    a = write("a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: nope}\n")
    b = write("b.yaml", "key: [unclosed\n")
    with pytest.raises(InputErrors) as caught:
        load_inventory([a, b])
    lines = str(caught.value).splitlines()
    assert lines == [
        f"{a}:4: Pod p: status.podIP: expected an IPv4 or IPv6 address, got 'nope'",
        f"{b}:2: invalid YAML: did not find expected ',' or ']'",
    ]
