"""Two inventories compared: every flow whose verdict changes, with what decided it before and
after, in blocks of flows that changed alike (compare.py), and those blocks described by
namespace and workload labels (summary.py)."""

from netfence.analysis.diff.changes import Cause, ChangeBlock, Decision, Diff, FlowChange, Snapshot
from netfence.analysis.diff.compare import diff_rulesets
from netfence.analysis.diff.explain import change_cause
from netfence.analysis.diff.ports import COMMON_PORTS, default_ports
from netfence.analysis.diff.summary import ChangeGroup, summarize

__all__ = [
    "COMMON_PORTS",
    "Cause",
    "ChangeBlock",
    "ChangeGroup",
    "Decision",
    "Diff",
    "FlowChange",
    "Snapshot",
    "change_cause",
    "default_ports",
    "diff_rulesets",
    "summarize",
]
