"""The command line: the parser, the commands, the process launcher and shell completion."""
from gradfit.cli.entry import main
from gradfit.cli.parser import build_parser

__all__ = ["build_parser", "main"]
