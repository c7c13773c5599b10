"""The `workstation` subcommands, grouped by what they do (the parser is in cli.py)."""
