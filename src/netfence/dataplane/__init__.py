"""Enforcement: the IR compiled to nftables and applied to a node's kernel, and an external host's
own firewall (host.py) written for nftables or iptables. Reads the IR only."""
