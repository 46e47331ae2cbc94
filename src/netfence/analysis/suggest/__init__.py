"""Least-privilege policies from observed flows ("application dependency mapping").

flows.py reads flow records (JSON lines, conntrack output) and resolves their ends on the
inventory; workloads.py groups pods into workloads by their stable labels and chooses a selector
matching exactly each; build.py maps who reaches which workload on which ports and writes the
policies (Kubernetes NetworkPolicy or Calico NetworkPolicy); check.py judges the result with the
analyzer; suggestion.py ties them together. All pure: values in, values out.
"""

from netfence.analysis.suggest.suggestion import Suggestion, SuggestKind, suggest

__all__ = ["SuggestKind", "Suggestion", "suggest"]
