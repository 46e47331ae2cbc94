"""tier-order: a Calico tier placed before the AdminNetworkPolicies (order 1,000 or less) or after
the BaselineAdminNetworkPolicy (order 10,000,000 or more, or no order), when those exist.

Calico runs tiers by order; netfence does the same (README: evaluation order). Such a tier is
legal, but it reverses what the admin policies are for: a tier before kube-admin decides before
AdminNetworkPolicies can, one after kube-baseline only sees what the baseline passed on.
"""

from __future__ import annotations

from collections.abc import Iterator

from netfence.analysis.lint.context import Context
from netfence.analysis.lint.finding import Check, Finding, Severity
from netfence.model.admin import AdminTier
from netfence.model.calico import ADMIN_TIER, ADMIN_TIER_ORDER, BASELINE_TIER, BASELINE_TIER_ORDER, DEFAULT_TIER


def run(context: Context) -> Iterator[Finding]:
    admin = any(p.tier is AdminTier.ADMIN for p in context.inventory.admin_policies)
    baseline = any(p.tier is AdminTier.BASELINE for p in context.inventory.admin_policies)
    for tier in context.inventory.tiers:
        if tier.name in (ADMIN_TIER, BASELINE_TIER, DEFAULT_TIER):
            continue
        label = f"Tier {tier.name}"
        if admin and tier.order is not None and tier.order <= ADMIN_TIER_ORDER:
            yield CHECK.finding(
                label,
                tier.location,
                f"order {tier.order:g} runs this tier before the AdminNetworkPolicies (tier {ADMIN_TIER}, "
                f"order {ADMIN_TIER_ORDER:,.0f}): its Allow and Deny rules decide before any admin policy can",
                f"give it an order between {ADMIN_TIER_ORDER:,.0f} and 1,000,000 to run after the admin "
                "policies and before NetworkPolicies",
                ("spec", "order"),
            )
        if baseline and (tier.order is None or tier.order >= BASELINE_TIER_ORDER):
            where = "without an order, it" if tier.order is None else f"order {tier.order:,.0f}:"
            yield CHECK.finding(
                label,
                tier.location,
                f"{where} runs after the BaselineAdminNetworkPolicy (tier {BASELINE_TIER}, order "
                f"{BASELINE_TIER_ORDER:,.0f}), so it only sees flows the baseline left undecided",
                f"give it an order below {BASELINE_TIER_ORDER:,.0f}",
                ("spec", "order") if tier.order is not None else ("spec",),
            )


CHECK = Check(
    "tier-order", Severity.WARNING, "A Calico tier ordered around the admin tiers", run, needs_pods=False
)
