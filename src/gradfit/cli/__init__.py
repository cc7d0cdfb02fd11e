"""The command line: the parser, the commands, the process launcher and shell completion."""
from gradfit.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
