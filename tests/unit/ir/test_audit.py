"""Naming audited policies on the command line."""

from __future__ import annotations

import pytest

from netfence.errors import UsageError
from netfence.ir.audit import parse_policy_ref
from netfence.ir.types import PolicyRef
from netfence.model.policies import PolicyKind

KNOWN = [
    PolicyRef(PolicyKind.NETWORK_POLICY, "shop", "web"),
    PolicyRef(PolicyKind.CALICO_NETWORK_POLICY, "shop", "web"),
    PolicyRef(PolicyKind.NETWORK_POLICY, "shop", "db"),
    PolicyRef(PolicyKind.ADMIN_NETWORK_POLICY, None, "deny-c"),
    PolicyRef(PolicyKind.GLOBAL_NETWORK_POLICY, None, "deny-c"),
    PolicyRef(PolicyKind.GLOBAL_NETWORK_POLICY, None, "only-global"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NetworkPolicy/shop/web", KNOWN[0]),
        ("caliconetworkpolicy/shop/web", KNOWN[1]),
        ("shop/db", KNOWN[2]),
        ("AdminNetworkPolicy/deny-c", KNOWN[3]),
        ("only-global", KNOWN[5]),
    ],
)
def test_a_policy_is_named_by_kind_namespace_and_name_or_less_when_unambiguous(text: str, expected: PolicyRef) -> None:
    assert parse_policy_ref(text, KNOWN) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shop/web", "--audit shop/web: names 2 policies (NetworkPolicy/shop/web, CalicoNetworkPolicy/shop/web); add the kind"),
        ("deny-c", "--audit deny-c: names 2 policies (AdminNetworkPolicy/deny-c, GlobalNetworkPolicy/deny-c); add the kind"),
        ("Policy/shop/web", "--audit Policy/shop/web: unknown kind 'Policy'"),
        ("shop/nope", "--audit shop/nope: no such policy"),
        ("", "--audit : no such policy"),
    ],
)
def test_unknown_and_ambiguous_names_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_policy_ref(text, KNOWN)
    assert str(caught.value).startswith(message)
