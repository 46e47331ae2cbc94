"""The lab: a Kubernetes-like cluster built from network namespaces on this machine.

It owns everything named `netfence-*` that it creates: one underlay netns with a bridge, one
netns per node, one netns per pod (routed veths, /32 routes, static neighbours), one netns per
external workload (on the underlay, outside every node), one background server process answering
on every pod's and host's ports, the prober, and the state file under /run/netfence/lab/. Nothing
is ever added to the initial network namespace.

plan.py is pure (Inventory -> LabPlan); netns.py, servers.py, probe.py, connection.py (single
flows from a pod, a node or a host, connections held open), services.py (NodePort and
LoadBalancer Services as DNAT on the nodes), moves.py (a pod given another address), record.py
(the flows that happen, read from conntrack in the nodes) and clean.py touch the kernel;
control.py ties them into up / apply / probe / down.
"""
