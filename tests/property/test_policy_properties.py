"""Properties of NetworkPolicy analysis over random clusters loaded through the real loader.

Every cluster is generated as Kubernetes objects (dicts, see strategies.py), dumped to YAML and
read back by netfence's loader, so these properties cover loader, IR and both engines at once.
On failure, hypothesis prints the cluster's YAML (`note`) next to the shrunk example.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterable
from ipaddress import ip_address
from pathlib import Path

import numpy as np
from hypothesis import given, note, settings
from hypothesis import strategies as st
from strategies import (
    DEFAULT_NAMESPACE,
    FLOW_PORTS,
    OUTSIDE_ADDRESSES,
    PEERS,
    POD_LABEL_MAPS,
    POD_SELECTORS,
    POLICY_PORTS,
    RULES,
    ClusterSpec,
    Obj,
    SpecParty,
    clusters,
    is_endpoint,
    load,
    namespace_of,
    parse_text,
    pod_addresses,
    policy_types,
    selector_matches,
    spec_allows,
    to_yaml,
)

from netfence.analysis.matrix import Matrix, compute_matrix
from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.model.labels import LabelSelector, Operator, Requirement
from netfence.sources.load import build_inventory, load_inventory

# About 20 s for the file. No deadline: an example's time varies with the cluster's size, and
# the first one of a run pays for pydantic building its validators.
MANY = settings(max_examples=400, deadline=None)
SOME = settings(max_examples=150, deadline=None)
FEW = settings(max_examples=50, deadline=None)


def matrix_of(ruleset: Ruleset) -> Matrix:
    return compute_matrix(ruleset, FLOW_PORTS)


def show(cluster: ClusterSpec) -> None:
    note("cluster:\n" + str(cluster))


def denied_flows(ruleset: Ruleset, allowed: np.ndarray) -> list[str]:
    ids = [e.id for e in ruleset.endpoints]
    return [f"{ids[i]} -> {ids[j]} {FLOW_PORTS[p]}" for p, i, j in zip(*np.nonzero(~allowed), strict=True)]


# --- 1. the two engines agree ----------------------------------------------------------------


@MANY
@given(clusters())
def test_matrix_engine_agrees_with_per_flow_evaluator_on_every_pair_and_port(cluster: ClusterSpec) -> None:
    show(cluster)
    ruleset = load(cluster.objects).ruleset
    matrix = matrix_of(ruleset)
    assert matrix.endpoints == ruleset.endpoints
    assert matrix.allowed.shape == (len(FLOW_PORTS), len(ruleset.endpoints), len(ruleset.endpoints))
    disagreements = []
    for p, port in enumerate(FLOW_PORTS):
        for i, source in enumerate(ruleset.endpoints):
            for j, destination in enumerate(ruleset.endpoints):
                verdict = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), port))
                if bool(matrix.allowed[p, i, j]) != verdict.allowed:
                    disagreements.append(
                        f"{source.id} -> {destination.id} {port}: matrix {bool(matrix.allowed[p, i, j])}, "
                        f"evaluator {verdict.allowed} ({verdict.egress.reason}/{verdict.ingress.reason})"
                    )
    assert not disagreements, "\n".join(disagreements)


@SOME
@given(clusters(), st.data())
def test_matrix_over_some_endpoints_is_the_full_matrix_restricted_to_them(
    cluster: ClusterSpec, data: st.DataObject
) -> None:
    show(cluster)
    ruleset = load(cluster.objects).ruleset
    full = matrix_of(ruleset)
    order = data.draw(st.permutations(range(len(ruleset.endpoints))))
    chosen = order[: data.draw(st.integers(0, len(order)))]
    part = compute_matrix(ruleset, FLOW_PORTS, [ruleset.endpoints[k] for k in chosen])
    assert np.array_equal(part.allowed, full.allowed[:, chosen][:, :, chosen])


# --- the evaluator follows the NetworkPolicy spec --------------------------------------------


@MANY
@given(clusters())
def test_evaluator_follows_a_direct_reading_of_the_networkpolicy_spec(cluster: ClusterSpec) -> None:
    """Pods, hostNetwork pods and outside hosts, on both sides, against `spec_allows`."""
    show(cluster)
    loaded = load(cluster.objects)
    ruleset = loaded.ruleset
    pods_by_id = {f"{namespace_of(p)}/{p['metadata']['name']}": p for p in cluster.pods}
    parties: list[tuple[Party, SpecParty]] = []
    for endpoint in ruleset.endpoints:
        pod = pods_by_id[endpoint.id]
        assert is_endpoint(pod)
        parties.append((Party.of(endpoint), SpecParty(pod, pod_addresses(pod))))
    # Everything else has only an address: hostNetwork pods (their node's) and outside hosts.
    for pod in cluster.pods:
        if pod["spec"].get("hostNetwork"):
            address = pod_addresses(pod)[0]
            parties.append((Party.outside(ip_address(address)), SpecParty(pod, (address,))))
    for address in OUTSIDE_ADDRESSES:
        parties.append((Party.outside(ip_address(address)), SpecParty(None, (address,))))
    wrong = []
    for port in FLOW_PORTS:
        for source, spec_source in parties:
            for destination, spec_destination in parties:
                if source.endpoint is None and destination.endpoint is None:
                    continue  # no policy applies on either side
                got = evaluate(ruleset, Flow(source, destination, port)).allowed
                expected = spec_allows(cluster, spec_source, spec_destination, port)
                if got != expected:
                    wrong.append(f"{source.label} -> {destination.label} {port}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


# --- 2. no policy, no restriction ------------------------------------------------------------


@SOME
@given(clusters(max_policies=0))
def test_without_policies_every_flow_is_allowed(cluster: ClusterSpec) -> None:
    show(cluster)
    ruleset = load(cluster.objects).ruleset
    matrix = matrix_of(ruleset)
    assert matrix.allowed.all(), denied_flows(ruleset, matrix.allowed)
    outside = Party.outside(ip_address(OUTSIDE_ADDRESSES[1]))
    for endpoint in ruleset.endpoints:
        for port in FLOW_PORTS:
            assert evaluate(ruleset, Flow(outside, Party.of(endpoint), port)).allowed
            assert evaluate(ruleset, Flow(Party.of(endpoint), outside, port)).allowed


# --- 3. default deny ingress -----------------------------------------------------------------

#: Ways of writing "deny all ingress to every pod of the namespace".
DEFAULT_DENY_INGRESS_SPECS: tuple[Obj, ...] = (
    {"podSelector": {}, "policyTypes": ["Ingress"]},
    {"podSelector": {}},
    {"podSelector": {}, "ingress": []},
    {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]},
    {"policyTypes": ["Ingress"]},
)


@st.composite
def with_default_deny_ingress(draw: st.DrawFn) -> tuple[ClusterSpec, ClusterSpec, str]:
    """(cluster without the deny, the same with it, its namespace). Other ingress policies of
    that namespace are dropped, since any of them could allow some ingress."""
    cluster = draw(clusters())
    namespace = draw(st.sampled_from(cluster.namespace_names))
    kept = [p for p in cluster.policies if namespace_of(p) != namespace or "Ingress" not in policy_types(p)]
    metadata: Obj = {"name": "default-deny-ingress"}
    if namespace != DEFAULT_NAMESPACE or draw(st.booleans()):
        metadata["namespace"] = namespace
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": copy.deepcopy(draw(st.sampled_from(DEFAULT_DENY_INGRESS_SPECS))),
    }
    position = draw(st.integers(0, len(kept)))
    return cluster.with_policies(kept), cluster.with_policies([*kept[:position], deny, *kept[position:]]), namespace


@SOME
@given(with_default_deny_ingress())
def test_default_deny_ingress_denies_every_ingress_into_its_namespace_except_self(
    case: tuple[ClusterSpec, ClusterSpec, str],
) -> None:
    _, cluster, namespace = case
    show(cluster)
    ruleset = load(cluster.objects).ruleset
    matrix = matrix_of(ruleset)
    outside = [Party.outside(ip_address(a)) for a in OUTSIDE_ADDRESSES]
    for j, destination in enumerate(ruleset.endpoints):
        if destination.namespace != namespace:
            continue
        for i, source in enumerate(ruleset.endpoints):
            for p, port in enumerate(FLOW_PORTS):
                verdict = evaluate(ruleset, Flow(Party.of(source), Party.of(destination), port))
                expected = i == j
                assert verdict.allowed is expected, f"{source.id} -> {destination.id} {port}"
                assert bool(matrix.allowed[p, i, j]) is expected, f"{source.id} -> {destination.id} {port}"
        for party in outside:
            for port in FLOW_PORTS:
                assert not evaluate(ruleset, Flow(party, Party.of(destination), port)).allowed


@SOME
@given(with_default_deny_ingress())
def test_default_deny_ingress_changes_nothing_outside_its_namespace(
    case: tuple[ClusterSpec, ClusterSpec, str],
) -> None:
    without, with_deny, namespace = case
    show(with_deny)
    before, after = load(without.objects).ruleset, load(with_deny.objects).ruleset
    assert before.endpoints == after.endpoints
    into_others = np.array([e.namespace != namespace for e in after.endpoints], dtype=bool)
    was, now = matrix_of(before).allowed, matrix_of(after).allowed
    assert np.array_equal(was[:, :, into_others], now[:, :, into_others])


# --- 4. allowing more never allows less ------------------------------------------------------


def selects_some_pod(cluster: ClusterSpec, policy: Obj) -> bool:
    selector = policy["spec"].get("podSelector") or {}
    return any(
        is_endpoint(pod)
        and namespace_of(pod) == namespace_of(policy)
        and selector_matches(selector, pod["metadata"].get("labels") or {})
        for pod in cluster.pods
    )


@st.composite
def with_more_allowed(draw: st.DrawFn) -> tuple[ClusterSpec, ClusterSpec, str]:
    """(cluster, the same with one more thing allowed, what was added).

    Additions that only widen: a rule appended to `ingress`; a rule appended to `egress` when
    that cannot switch on egress isolation (policyTypes given, or egress already has rules);
    a peer appended to a non-empty `from`/`to`; a port appended to non-empty `ports`. (Appending
    to an empty `from` or `ports`, or adding a policy, narrows instead.)
    """
    cluster = draw(clusters().filter(lambda c: bool(c.policies)))
    policies = copy.deepcopy(list(cluster.policies))
    # Mostly change a policy that applies to some pod: elsewhere a change cannot show.
    applying = [i for i, p in enumerate(policies) if selects_some_pod(cluster, p)]
    index = draw(st.sampled_from(applying or range(len(policies))))
    spec = policies[index]["spec"]
    types = policy_types(policies[index])
    choices: list[tuple[str, str, int | None]] = []
    if "Ingress" in types:
        choices.append(("rule", "ingress", None))
    if "Egress" in types or (spec.get("policyTypes") and draw(st.booleans())):
        # Without policyTypes, an egress rule added to none would switch egress isolation on.
        choices.append(("rule", "egress", None))
    for field, peers_field in (("ingress", "from"), ("egress", "to")):
        for at, rule in enumerate(spec.get(field) or ()):
            if rule.get(peers_field):
                choices.append(("peer", field, at))
            if rule.get("ports"):
                choices.append(("port", field, at))
    what, field, r = draw(st.sampled_from(choices))
    peers_field = "from" if field == "ingress" else "to"
    if what == "rule":
        spec[field] = [*(spec.get(field) or []), draw(RULES[peers_field])]
    elif what == "peer":
        assert r is not None
        spec[field][r][peers_field].append(draw(PEERS))
    else:
        assert r is not None
        spec[field][r]["ports"].append(draw(POLICY_PORTS))
    policy = f"{namespace_of(policies[index])}/{policies[index]['metadata']['name']}"
    added = f"a {what} in {policy} {field}" + (f"[{r}]" if r is not None else "")
    return cluster, cluster.with_policies(policies), added


@SOME
@given(with_more_allowed())
def test_adding_an_allow_rule_peer_or_port_never_removes_an_allowed_flow(
    case: tuple[ClusterSpec, ClusterSpec, str],
) -> None:
    before, after, added = case
    note(f"added: {added}")
    show(after)
    old, new = load(before.objects).ruleset, load(after.objects).ruleset
    was, now = matrix_of(old).allowed, matrix_of(new).allowed
    lost = was & ~now
    assert not lost.any(), denied_flows(new, ~lost)


# --- 5. input layout does not matter ---------------------------------------------------------


def as_list(objects: list[Obj], typed: bool) -> Obj:
    """One `kind: List` (items carry kind and apiVersion) or, when `typed` and every item is of
    one kind, a `PodList`-style object whose items leave them off, as API list responses do."""
    items = copy.deepcopy(objects)
    kinds = {(o["apiVersion"], o["kind"]) for o in items}
    if typed and len(kinds) == 1:
        ((api_version, kind),) = kinds
        for item in items:
            del item["apiVersion"], item["kind"]
        return {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {}, "items": items}
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


@st.composite
def layouts(draw: st.DrawFn, cluster: ClusterSpec) -> list[str]:
    """The cluster's objects, shuffled, split into files (YAML texts) of several documents,
    some wrapped in List objects, with empty documents here and there."""
    objects = draw(st.permutations(cluster.objects))
    cuts = sorted(draw(st.lists(st.integers(0, len(objects)), max_size=3)))
    texts = []
    for start, end in zip([0, *cuts], [*cuts, len(objects)], strict=True):
        chunk, parts = objects[start:end], []
        while chunk:
            size = draw(st.integers(1, len(chunk)))
            group, chunk = chunk[:size], chunk[size:]
            form = draw(st.sampled_from(("documents", "documents", "list", "typed-list")))
            if form == "documents":
                parts.append(to_yaml(group))
            else:
                parts.append(to_yaml([as_list(group, typed=form == "typed-list")]))
            if draw(st.integers(0, 4)) == 0:
                parts.append("---\n")  # an empty document, which the loader skips
        texts.append("".join(parts))
    return texts


def ruleset_of_texts(texts: Iterable[str]) -> Ruleset:
    docs = [d for n, text in enumerate(texts) for d in parse_text(text, f"part-{n}.yaml")]
    loaded = build_inventory(docs)
    assert not loaded.warnings, loaded.warnings
    return build_ruleset(loaded.inventory)


@SOME
@given(clusters(), st.data())
def test_document_order_and_splitting_into_sources_do_not_change_the_verdicts(
    cluster: ClusterSpec, data: st.DataObject
) -> None:
    show(cluster)
    reference = load(cluster.objects).ruleset
    texts = data.draw(layouts(cluster))
    note("layout:\n" + "\n# ----- next source -----\n".join(texts))
    ruleset = ruleset_of_texts(texts)
    assert ruleset == reference
    assert np.array_equal(matrix_of(ruleset).allowed, matrix_of(reference).allowed)


@FEW
@given(clusters(), st.data())
def test_splitting_into_files_and_directories_does_not_change_the_verdicts(
    cluster: ClusterSpec, data: st.DataObject
) -> None:
    show(cluster)
    reference = load(cluster.objects).ruleset
    texts = data.draw(layouts(cluster))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for n, text in enumerate(texts):
            folder = root / data.draw(st.sampled_from(("a", "a/b", "c")))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{n}{data.draw(st.sampled_from(('.yaml', '.yml')))}"
            path.write_text(text)
            paths.append(path)
        # Name some files, and some directories (walked recursively) — each file once.
        named_dirs = data.draw(st.sets(st.sampled_from(sorted(d for d in ("a", "c") if (root / d).is_dir()))))
        args = [str(root / d) for d in named_dirs]
        args += [str(p) for p in paths if not any(root / d in p.parents for d in named_dirs)]
        args = data.draw(st.permutations(args))
        loaded = load_inventory(args)
    assert not loaded.warnings
    ruleset = build_ruleset(loaded.inventory)
    assert ruleset == reference
    assert np.array_equal(matrix_of(ruleset).allowed, matrix_of(reference).allowed)


# --- 6. label selectors ----------------------------------------------------------------------


@MANY
@given(POD_SELECTORS, POD_LABEL_MAPS)
def test_label_selector_matches_exactly_when_a_plain_reading_of_it_does(selector: Obj, labels: dict[str, str]) -> None:
    model = LabelSelector(
        LabelSelector.from_labels(selector.get("matchLabels") or {}).requirements
        + tuple(
            Requirement(e["key"], Operator(e["operator"]), tuple(e.get("values") or ()))
            for e in selector.get("matchExpressions") or ()
        )
    )
    assert model.is_empty == (not selector.get("matchLabels") and not selector.get("matchExpressions"))
    assert model.matches(labels) == selector_matches(selector, labels)
    # ANDed: the selector matches iff each of its requirements does on its own.
    assert model.matches(labels) == all(LabelSelector((r,)).matches(labels) for r in model.requirements)
    if model.is_empty:
        assert model.matches(labels)


@SOME
@given(clusters(), st.data())
def test_a_policy_applies_to_exactly_the_pods_of_its_namespace_its_pod_selector_matches(
    cluster: ClusterSpec, data: st.DataObject
) -> None:
    """Selectors as written in YAML (through the loader), against the plain reading."""
    selector = data.draw(POD_SELECTORS)
    namespace = data.draw(st.sampled_from(cluster.namespace_names))
    probe = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"podSelector": selector, "policyTypes": ["Ingress", "Egress"]},
    }
    changed = cluster.with_policies([*cluster.policies, probe])
    show(changed)
    ruleset = load(changed.objects).ruleset
    expected = {
        f"{namespace}/{p['metadata']['name']}"
        for p in cluster.pods
        if is_endpoint(p)
        and namespace_of(p) == namespace
        and selector_matches(selector, p["metadata"].get("labels") or {})
    }
    for tiers in (ruleset.ingress, ruleset.egress):
        (probe_rules,) = [p for tier in tiers for p in tier.policies if p.ref.name == "probe"]
        assert probe_rules.subjects == expected


# --- 7. self -------------------------------------------------------------------------------


def deny_all(namespace: str) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


@SOME
@given(clusters(), st.booleans())
def test_a_pod_can_always_reach_itself_whatever_the_policies(cluster: ClusterSpec, isolate_all: bool) -> None:
    if isolate_all:  # every pod isolated both ways, with nothing allowed
        cluster = cluster.with_policies([*cluster.policies, *map(deny_all, cluster.namespace_names)])
    show(cluster)
    ruleset = load(cluster.objects).ruleset
    matrix = matrix_of(ruleset)
    for i, endpoint in enumerate(ruleset.endpoints):
        for p, port in enumerate(FLOW_PORTS):
            assert evaluate(ruleset, Flow(Party.of(endpoint), Party.of(endpoint), port)).allowed
            assert matrix.allowed[p, i, i]
