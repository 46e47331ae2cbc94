"""Enforcement: the IR compiled to nftables and applied to a node's kernel. Reads the IR only."""
