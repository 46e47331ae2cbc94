"""What was declared, whatever the source: frozen values, no I/O."""
