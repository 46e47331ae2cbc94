"""table | wide | json | yaml | csv renderings of analysis results; the only package drawing with rich."""
