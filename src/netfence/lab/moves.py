"""Give a lab pod another address, as a rescheduled pod gets one: the pod's eth0, its node's /32
route and neighbour, every other node's and every external host's route to it. The server keeps
answering (it listens on 0.0.0.0). Policies are not touched: re-render them from the inventory
that shows the new address (`lab_inventory` takes it from the saved plan)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from netfence.errors import UsageError
from netfence.lab.netns import ip_batch
from netfence.lab.plan import GATEWAY, NODE_UPLINK, POD_INTERFACE, LabPlan
from netfence.lab.state import load_state, save_state
from netfence.model.endpoints import EndpointId


def move_pod(plan: LabPlan, pod_id: EndpointId, address: IPv4Address) -> LabPlan:
    """Re-address `pod_id` to `address` in the kernel; return (and save) the new plan."""
    pod = next((p for p in plan.pods if p.id == pod_id), None)
    if pod is None:
        raise UsageError(f"no pod {pod_id} in lab {plan.name}")
    taken = {w.ip for w in plan.workloads} | {n.ip for n in plan.nodes}
    if address in taken or address in plan.network:
        raise UsageError(f"{address} is already used in lab {plan.name}")
    node = plan.node(pod.node)
    # The new address first: a device losing its last address loses its routes with it.
    ip_batch(
        [
            f"address add {address}/32 dev {POD_INTERFACE}",
            f"address del {pod.ip}/32 dev {POD_INTERFACE}",
            f"route replace {GATEWAY}/32 dev {POD_INTERFACE} scope link",
            f"route replace default via {GATEWAY} dev {POD_INTERFACE}",
        ],
        pod.netns,
    )
    ip_batch(
        [
            f"route del {pod.ip}/32 dev {pod.veth}",
            f"neigh del {pod.ip} dev {pod.veth}",
            f"route add {address}/32 dev {pod.veth} scope link",
            f"neigh replace {address} lladdr {pod.mac} dev {pod.veth} nud permanent",
        ],
        node.netns,
    )
    for other in plan.nodes:
        if other.name != node.name:
            ip_batch([f"route del {pod.ip}/32", f"route add {address}/32 via {node.ip} dev {NODE_UPLINK}"], other.netns)
    for external in plan.externals:
        ip_batch(
            [f"route del {pod.ip}/32", f"route add {address}/32 via {node.ip} dev {POD_INTERFACE}"], external.netns
        )
    moved = replace(plan, pods=tuple(replace(p, ip=address) if p.id == pod_id else p for p in plan.pods))
    state = load_state(plan.name)
    if state is not None:
        save_state(replace(state, plan=moved))
    return moved
