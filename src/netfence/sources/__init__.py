"""YAML or API objects -> model. The only code that knows apiVersion and kind."""
