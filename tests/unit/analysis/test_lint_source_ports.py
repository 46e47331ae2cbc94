"""Lint check source-port-split: source ports that hold for some of a client's ephemeral ports only."""

from __future__ import annotations

from collections.abc import Callable

from clusters import Cluster
from lint_support import findings_of

World = Callable[..., Cluster]

CODE = "source-port-split"


def web_in(source: str, protocol: str = "TCP", direction: str = "ingress") -> str:
    return f"""
    apiVersion: projectcalico.org/v3
    kind: NetworkPolicy
    metadata: {{name: web-in, namespace: shop}}
    spec:
      selector: app == 'web'
      types: [{direction.capitalize()}]
      {direction}:
      - {{action: Allow, protocol: {protocol}, source: {source}}}
    """


def test_ports_in_part_of_the_ephemeral_range_are_reported(cluster: World) -> None:
    found = findings_of(cluster, web_in("{ports: ['40000:50000']}"), code=CODE)
    assert [(f.field, f.message) for f in found] == [
        (
            ("spec", "ingress", 0, "source", "ports"),
            "ingress[0] source ports hold for 10001 of the 28232 ephemeral ports 32768-60999 a client picks "
            "from (40000-50000; TCP): whether the rule matches depends on the client's source port; netfence "
            "reads it as not matching",
        )
    ]


def test_not_ports_that_cut_the_ephemeral_range_are_reported(cluster: World) -> None:
    found = findings_of(cluster, web_in("{notPorts: ['32768:40000']}", "UDP"), code=CODE)
    assert [f.field for f in found] == [("spec", "ingress", 0, "source", "notPorts")]
    assert "(40001-60999; UDP)" in found[0].message


def test_ports_covering_or_missing_the_ephemeral_range_are_not_reported(cluster: World) -> None:
    for source in ("{ports: ['1024:65535']}", "{ports: [53, '1:1023']}", "{notPorts: [80, '61000:65535']}"):
        assert findings_of(cluster, web_in(source), code=CODE) == [], source


def test_a_named_source_port_in_the_ephemeral_range_splits_it_for_that_source(cluster: World) -> None:
    client = """
    apiVersion: v1
    kind: Pod
    metadata: {name: client, namespace: ops, labels: {app: client}}
    spec: {containers: [{name: c, image: busybox, ports: [{containerPort: 45000, name: src}]}]}
    status: {phase: Running, podIP: 10.244.2.11}
    """
    found = findings_of(cluster, client, web_in("{notPorts: [src]}"), code=CODE)
    assert len(found) == 1 and "TCP from ops/client" in found[0].message
    # Egress: the name resolves on the policy's own pods; web declares http (80), outside the range.
    assert findings_of(cluster, client, web_in("{notPorts: [http]}", direction="egress"), code=CODE) == []
