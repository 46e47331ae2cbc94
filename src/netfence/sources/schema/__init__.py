"""Pydantic wire models, one module per API owner."""
