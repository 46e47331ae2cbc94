"""The iptables backend for a host's own firewall: `ipset restore` and `iptables-restore` input
(render.py) and applying it, in a network namespace or on this host (apply.py)."""
