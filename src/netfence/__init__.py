"""netfence: one network policy engine for Kubernetes NetworkPolicy and beyond.

Load inventory and policy from Kubernetes YAML, build one intermediate representation of the
rules (netfence.ir), and answer from it who can reach whom (netfence.analysis).
"""

__version__ = "0.1.0"
