"""Flow logs and audited policies in the compiled node table; no kernel needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flowlog_cluster import CLUSTER

from netfence.analysis.verdict import Flow, Party, evaluate
from netfence.dataplane.nft.compile import compile_node
from netfence.dataplane.nft.flowlog import (
    Decider,
    LogOptions,
    LogVerdict,
    default_id,
    log_catalog,
    log_prefix,
    parse_prefix,
    rule_id,
    tier_end_id,
)
from netfence.dataplane.nft.objects import Table
from netfence.ir.audit import enforced_ruleset, parse_audited
from netfence.ir.build import build_ruleset
from netfence.ir.types import Ruleset
from netfence.model.endpoints import EndpointId
from netfence.model.policies import Direction
from netfence.model.ports import FlowPort, Protocol
from netfence.sources.load import load_inventory

_STATEMENT_PREFIX = re.compile(r'prefix "([^"]*)"')


@pytest.fixture
def ruleset(tmp_path: Path) -> Ruleset:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    return build_ruleset(load_inventory([str(path)]).inventory)


def chain(table: Table, name: str) -> list[str]:
    return [r.render().strip() for c in table.chains if c.name == name for r in c.rules]


def chain_names(table: Table) -> list[str]:
    return [c.name for c in table.chains]


def prefixes(table: Table) -> list[str]:
    return [m for c in table.chains for r in c.rules for m in _STATEMENT_PREFIX.findall(r.statement)]


def test_without_log_options_the_table_is_unchanged(ruleset: Ruleset) -> None:
    plain = compile_node(ruleset, "node-a")
    assert compile_node(ruleset, "node-a", log=None) == plain
    # Logging nothing renders the plain walk too: the same chains, rules and comments.
    assert compile_node(ruleset, "node-a", log=LogOptions(denied=False)).render() == plain.render()
    assert not any(name.startswith("log_") for name in chain_names(plain))
    assert "log group" not in plain.render()


def test_denies_go_to_a_log_chain_that_logs_to_the_group_and_drops(ruleset: Ruleset) -> None:
    table = compile_node(ruleset, "node-a", log=LogOptions(group=7, rate=10, burst=3))
    deny_c = rule_id(next(r.ref for t in ruleset.ingress for p in t.policies for r in p.rules if p.ref.name == "deny-c"))
    end = tier_end_id(Direction.INGRESS, "default")
    b_chains = [name for name in chain_names(table) if any(f"goto log_d_{deny_c}" in r for r in chain(table, name))]
    assert b_chains, "the ANP deny rule jumps to its log chain"
    assert chain(table, f"log_d_{deny_c}") == [
        f'limit rate 10/second burst 3 packets log group 7 prefix "netfence:Di:{deny_c}"'
        ' comment "AdminNetworkPolicy deny-c ingress[0] _no-c_"',
        "drop",
    ]
    assert chain(table, f"log_d_{end}")[1] == "drop"
    # The class chain still counts: the verdict moved, the counter stayed.
    assert f'counter goto log_d_{end} comment "default: isolated, no rule allowed"' in chain(table, "in_c0_t1")
    # Allowed packets are not logged unless asked.
    assert not any(name.startswith("log_a_") for name in chain_names(table))
    assert 'th dport { 80 } counter accept comment "NetworkPolicy shop/b-from-a ingress[0]"' in " ".join(
        chain(table, "in_c0_t1")
    )


def test_allowed_logging_logs_new_connections_of_allow_rules_and_of_the_default(ruleset: Ruleset) -> None:
    table = compile_node(ruleset, "node-a", log=LogOptions(allowed=True, rate=None))
    allow = rule_id(next(r.ref for t in ruleset.ingress for p in t.policies for r in p.rules if p.ref.name == "b-from-a"))
    assert chain(table, f"log_a_{allow}") == [
        f'ct state new log group 5 prefix "netfence:Ai:{allow}" comment "NetworkPolicy shop/b-from-a ingress[0]"',
        "accept",
    ]
    # d is selected only by deny-x (its tier goes on): the end of its last tier allows, logged as the default.
    default = default_id(Direction.INGRESS)
    assert chain(table, "in_c1_t0")[-1] == f"goto log_a_{default}"
    assert chain(table, f"log_a_{default}")[0].startswith("ct state new log group 5")


def test_egress_allows_return_from_their_log_chain(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        CLUSTER
        + """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-out, namespace: shop}
spec:
  podSelector: {matchLabels: {app: a}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: b}}}]}]
"""
    )
    ruleset = build_ruleset(load_inventory([str(path)]).inventory)
    table = compile_node(ruleset, "node-a", log=LogOptions(allowed=True))
    allow = rule_id(next(r.ref for t in ruleset.egress for p in t.policies for r in p.rules))
    assert chain(table, f"log_a_{allow}")[1] == "return"
    assert chain(table, f"log_d_{tier_end_id(Direction.EGRESS, 'default')}")[1] == "drop"


def test_every_prefix_is_generated_short_and_maps_back_to_its_rule_or_tier_end(ruleset: Ruleset) -> None:
    table = compile_node(ruleset, None, log=LogOptions(allowed=True))
    catalog = log_catalog(ruleset)
    found = prefixes(table)
    assert found
    for prefix in found:
        assert len(prefix) < 64 and re.fullmatch(r"netfence:[DAU][ie]:[0-9a-f]{10}", prefix)
        parsed = parse_prefix(prefix)
        assert parsed is not None
        verdict, direction, log_id = parsed
        entry = catalog[log_id]
        assert entry.direction is direction
        if entry.decider is Decider.RULE:
            assert entry.rule is not None and entry.rule.direction is direction
    texts = {catalog[parse_prefix(p)[2]].text for p in found}  # type: ignore[index]
    assert {
        'AdminNetworkPolicy deny-c ingress[0] "no-c"',
        'AdminNetworkPolicy deny-x ingress[0] "no-x"',
        "NetworkPolicy shop/b-from-a ingress[0]",
        "end of tier default",
        "no tier decided",
    } <= texts


def test_prefix_round_trip_and_foreign_prefixes() -> None:
    text = log_prefix(LogVerdict.AUDIT, Direction.EGRESS, "0123456789")
    assert text == "netfence:Ue:0123456789"
    assert parse_prefix(text) == (LogVerdict.AUDIT, Direction.EGRESS, "0123456789")
    for other in ("", "netfence in ", "netfence:Xi:0123456789", "netfence:Di:0123", "netfence:Di:0123456789 "):
        assert parse_prefix(other) is None


def test_catalog_ids_do_not_depend_on_the_rest_of_the_ruleset(ruleset: Ruleset, tmp_path: Path) -> None:
    # A reader built from another version of the input still names the rules both hold.
    path = tmp_path / "less.yaml"
    path.write_text(CLUSTER.split("---\napiVersion: policy.networking.k8s.io/v1alpha1")[0])
    smaller = build_ruleset(load_inventory([str(path)]).inventory)
    full, part = log_catalog(ruleset), log_catalog(smaller)
    assert set(part) < set(full)
    assert all(full[i] == entry for i, entry in part.items())


def test_options_are_checked() -> None:
    for bad in ({"group": 70000}, {"rate": 0}, {"burst": 0}):
        with pytest.raises(ValueError):
            LogOptions(**bad)  # type: ignore[arg-type]


# --- audit -------------------------------------------------------------------------------------


def test_an_audited_deny_rule_logs_and_returns_and_drops_nothing(ruleset: Ruleset) -> None:
    audited = parse_audited(["deny-x"], ruleset)
    table = compile_node(ruleset, "node-a", log=LogOptions(denied=False, audit=audited))
    deny_x = rule_id(next(r.ref for t in ruleset.ingress for p in t.policies for r in p.rules if p.ref.name == "deny-x"))
    # d: the admin tier jumps to the audit chain, then no tier decides (nothing else selects d).
    assert chain(table, "in_c1_t0") == ["jump in_c1_t0_audit"]  # then falls off the chain: allowed
    audit = chain(table, "in_c1_t0_audit")
    assert len(audit) == 1 and audit[0].endswith(f'counter goto log_u_{deny_x} comment "AdminNetworkPolicy deny-x ingress[0] _no-x_"')
    assert chain(table, f"log_u_{deny_x}") == [
        f'limit rate 20/second burst 40 packets log group 5 prefix "netfence:Ui:{deny_x}"'
        ' comment "AdminNetworkPolicy deny-x ingress[0] _no-x_"',
        "return",
    ]
    # Enforced policies keep their plain verdicts (no --log): b's chains drop inline.
    assert any(rule.startswith("ip saddr") and rule.endswith('drop comment "AdminNetworkPolicy deny-c ingress[0] _no-c_"') for rule in chain(table, "in_c0_t0"))


def test_an_audited_policy_alone_in_a_tier_logs_the_tier_end_and_the_tier_goes_on(ruleset: Ruleset) -> None:
    audited = parse_audited(["NetworkPolicy/shop/b-from-a"], ruleset)
    table = compile_node(ruleset, "node-a", log=LogOptions(audit=audited))
    end = tier_end_id(Direction.INGRESS, "default")
    # b: deny-c in the admin tier, then the default tier with only the audited policy.
    assert chain(table, "in_c0_t0")[-1] == "goto in_c0_t1"
    assert chain(table, "in_c0_t1") == ["jump in_c0_t1_audit"]
    audit = chain(table, "in_c0_t1_audit")
    # The allow rules return silently (the policy allowed: nothing to report); the end logs.
    assert [r.split(" counter ")[-1].split(" comment")[0] for r in audit[:-1]] == ["return", "return"]
    assert audit[-1] == f'goto log_u_{end} comment "default: audit, isolated, no rule allowed"'
    assert chain(table, f"log_u_{end}")[1] == "return"
    assert not any(r.endswith("drop") for r in audit)


def test_enforced_rules_between_audited_ones_return_uncounted_in_the_audit_chain(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        CLUSTER
        + """
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: allow-a}
spec:
  priority: 15
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}}
  ingress:
  - {name: a, action: Allow, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: deny-a-late}
spec:
  priority: 16
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}}
  ingress:
  - {name: a, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]}
"""
    )
    ruleset = build_ruleset(load_inventory([str(path)]).inventory)
    table = compile_node(ruleset, "node-a", log=LogOptions(audit=parse_audited(["deny-c", "deny-a-late"], ruleset)))
    tier = chain(table, "in_c0_t0")
    assert tier[0] == "jump in_c0_t0_audit"  # deny-c comes first
    audit = chain(table, "in_c0_t0_audit")
    # deny-c (audited), allow-a (enforced: a guard), deny-a-late (audited).
    assert "goto log_u_" in audit[0] and "AdminNetworkPolicy deny-c" in audit[0]
    assert audit[1].endswith('return comment "AdminNetworkPolicy allow-a ingress[0] _a_"') and "counter" not in audit[1]
    assert "goto log_u_" in audit[2] and "deny-a-late" in audit[2]
    # The tier chain holds the enforced policy once, counted, with its verdict.
    assert any("counter accept" in r and "allow-a" in r for r in tier)


def test_enforced_ruleset_drops_audited_policies_and_query_verdicts_follow(ruleset: Ruleset) -> None:
    audited = parse_audited(["deny-x", "shop/b-from-a"], ruleset)
    enforced = enforced_ruleset(ruleset, audited)
    names = {p.ref.name for t in (*enforced.ingress, *enforced.egress) for p in t.policies}
    assert names == {"deny-c"}
    assert enforced.endpoints == ruleset.endpoints

    def verdict(rules: Ruleset, source: str, destination: str) -> bool:
        src, dst = rules.endpoint(EndpointId(source)), rules.endpoint(EndpointId(destination))
        assert src is not None and dst is not None
        return evaluate(rules, Flow(Party.of(src), Party.of(dst), FlowPort(Protocol.TCP, 80))).allowed

    assert not verdict(ruleset, "shop/x-far", "shop/d-near") and verdict(enforced, "shop/x-far", "shop/d-near")
    assert not verdict(ruleset, "shop/x-far", "shop/b-near") and verdict(enforced, "shop/x-far", "shop/b-near")
    assert not verdict(enforced, "shop/c-far", "shop/b-near")
