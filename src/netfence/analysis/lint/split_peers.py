"""split-peers: a namespaceSelector and a podSelector written as two peers where one was likely
meant (the `-` trap).

    from:                              from:
    - namespaceSelector: {...}         - namespaceSelector: {...}
      podSelector: {...}               - podSelector: {...}
    one peer: pods matching both       two peers: every pod of those namespaces,
                                       or matching pods of the policy's own namespace

Reported for two adjacent peers, one with only a namespaceSelector, the other with only a
podSelector. The message says which pods the podSelector matches where, when pods are loaded:
none in the policy's namespace but some in the selected namespaces is the strongest sign.
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context, direction_field, peer_field
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.model.labels import LabelSelector
from netfence.model.policies import Direction, NetworkPolicy, Peer


def _only_namespaces(peer: Peer) -> bool:
    return peer.namespace_selector is not None and peer.pod_selector is None and peer.ip_block is None


def _only_pods(peer: Peer) -> bool:
    return peer.pod_selector is not None and peer.namespace_selector is None and peer.ip_block is None


def run(context: Context) -> Iterator[Finding]:
    for entry in context.entries(NetworkPolicy):
        policy = entry.policy
        assert isinstance(policy, NetworkPolicy)
        for direction in Direction:
            word = peer_field(direction)
            for index, rule in enumerate(policy.rules(direction)):
                peers = rule.peers or ()
                for j in range(len(peers) - 1):
                    first, second = peers[j], peers[j + 1]
                    if _only_namespaces(first) and _only_pods(second):
                        spaces, pods, k = first.namespace_selector, second.pod_selector, j + 1
                    elif _only_pods(first) and _only_namespaces(second):
                        spaces, pods, k = second.namespace_selector, first.pod_selector, j
                    else:
                        continue
                    assert spaces is not None and pods is not None
                    where = f"{direction}[{index}].{word}[{j}] and {word}[{j + 1}]"
                    message = (
                        f"{where} are two peers (either admits): every pod of the namespaces matching "
                        f"{spaces}, and pods {pods} of namespace {policy.namespace}; one peer with both "
                        f"selectors would admit only pods {pods} in those namespaces"
                    )
                    if context.has_pods:
                        message += _evidence(context, policy.namespace, spaces, pods)
                    yield CHECK.finding(
                        entry.label,
                        entry.location,
                        message,
                        "if one peer was meant, put namespaceSelector and podSelector in one list item "
                        "(remove the `-` before the second selector)",
                        ("spec", direction_field(direction), index, word, k),
                    )


def _evidence(context: Context, namespace: str, spaces: LabelSelector, pods: LabelSelector) -> str:
    selected = {n for n in context.namespaces if spaces.matches(context.namespace_labels(n))}
    here = [p for p in context.pods if p.namespace == namespace and pods.matches(p.labels)]
    there = [p for p in context.pods if p.namespace in selected and pods.matches(p.labels)]
    if not here and there:
        count = "one in the selected namespaces does"
        if len(there) > 1:
            count = f"{len(there)} pods in the selected namespaces do"
        return (
            f"; no pod of {namespace} matches the podSelector, but {count} "
            f"({there[0].id}{', ...' if len(there) > 1 else ''}): one peer was likely meant"
        )
    return ""


CHECK = Check(
    "split-peers",
    Severity.WARNING,
    "namespaceSelector and podSelector as two peers where one was likely meant",
    run,
    needs_pods=False,
)
