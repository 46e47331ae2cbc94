"""The command line: one module per verb; main.py builds the parser and maps errors to exit codes."""
