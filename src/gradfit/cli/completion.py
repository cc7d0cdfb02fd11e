"""Shell completion scripts (bash, zsh, fish) generated from the CLI's argparse parser.

``gradfit completion bash`` walks :func:`gradfit.cli.parser.build_parser`'s subcommands and options, so
the script always matches the installed CLI. Options with ``choices`` complete their choices;
other values and positional arguments complete file names.
"""
from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field

from gradfit.cli.parser import build_parser

SHELLS = ("bash", "zsh", "fish")


@dataclass
class Option:
    strings: list[str]
    takes_value: bool
    choices: list[str] | None
    help: str
    files: bool = True  # the value may be a path (not a number)


@dataclass
class Command:
    name: str
    help: str
    options: list[Option] = field(default_factory=list)
    positional_choices: list[str] | None = None


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    try:
        text = parser._get_formatter()._expand_help(action)  # fills in %(default)s like --help does
    except (KeyError, TypeError, ValueError):
        text = action.help
    text = " ".join(text.split())
    return text if len(text) <= 70 else text[:67].rstrip() + "..."


def _options(parser: argparse.ArgumentParser) -> list[Option]:
    return [Option(list(a.option_strings), a.nargs != 0, [str(c) for c in a.choices] if a.choices else None,
                   _help(parser, a), a.type in (None, str)) for a in parser._actions if a.option_strings]


def describe(parser: argparse.ArgumentParser) -> tuple[list[Option], list[Command]]:
    """(top-level options, subcommands with their options) of an argparse parser."""
    commands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                positional = [a for a in sub._actions if not a.option_strings and a.choices]
                commands.append(Command(name, " ".join(helps.get(name, "").split()), _options(sub),
                                        [str(c) for c in positional[0].choices] if positional else None))
    return _options(parser), commands


def completion_script(shell: str, parser: argparse.ArgumentParser | None = None) -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    if parser is None:
        parser = build_parser()
    top, commands = describe(parser)
    prog = parser.prog
    if shell == "bash":
        return _bash(prog, top, commands)
    if shell == "zsh":
        return _zsh(prog, top, commands)
    if shell == "fish":
        return _fish(prog, top, commands)
    raise ValueError(f"unknown shell {shell!r}; choose bash, zsh or fish")


def _words(options: list[Option]) -> str:
    return " ".join(s for o in options for s in o.strings)


def _bash(prog: str, top: list[Option], commands: list[Command]) -> str:
    fn = "_" + prog.replace("-", "_")
    lines = [f"# bash completion for {prog}; load with: source <({prog} completion bash)",
             f"{fn}() {{",
             '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i',
             "    for ((i = 1; i < COMP_CWORD; i++)); do",
             '        case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac',
             "    done",
             '    case "$cmd" in',
             '        "")',
             '            if [[ "$cur" == -* ]]; then',
             f'                COMPREPLY=($(compgen -W {shlex.quote(_words(top))} -- "$cur"))',
             "            else",
             f'                COMPREPLY=($(compgen -W {shlex.quote(" ".join(c.name for c in commands))} -- "$cur"))',
             "            fi ;;"]
    for c in commands:
        lines.append(f"        {shlex.quote(c.name)})")
        lines.append('            case "$prev" in')
        for o in c.options:
            if o.takes_value:
                pattern = "|".join(o.strings)
                reply = f"compgen -W {shlex.quote(' '.join(o.choices))}" if o.choices else \
                    ("compgen -f" if o.files else "compgen -W ''")
                lines.append(f'                {pattern}) COMPREPLY=($({reply} -- "$cur")); return ;;')
        lines.append("            esac")
        rest = f"compgen -W {shlex.quote(' '.join(c.positional_choices))}" if c.positional_choices else "compgen -f"
        lines += ['            if [[ "$cur" == -* ]]; then',
                  f'                COMPREPLY=($(compgen -W {shlex.quote(_words(c.options))} -- "$cur"))',
                  "            else",
                  f'                COMPREPLY=($({rest} -- "$cur"))',
                  "            fi ;;"]
    lines += ["    esac", "}", f"complete -o bashdefault -o default -F {fn} {prog}", ""]
    return "\n".join(lines)


def _zsh_text(text: str) -> str:
    """Text inside a single-quoted _arguments spec: no brackets or colons, quotes closed and reopened."""
    return text.replace("[", "(").replace("]", ")").replace(":", ";").replace("'", "'\\''")


def _zsh_quote(text: str) -> str:
    """Text inside single quotes (a _describe entry's description may hold colons)."""
    return text.replace("'", "'\\''")


def _zsh_specs(options: list[Option]) -> list[str]:
    specs = []
    for o in options:
        for s in o.strings:
            spec = f"{s}[{_zsh_text(o.help)}]"
            if o.takes_value:
                action = f"({' '.join(o.choices)})" if o.choices else ("_files" if o.files else " ")
                spec += f":{_zsh_text(o.strings[-1].lstrip('-'))}:{action}"
            specs.append(f"'{spec}'")
    return specs


def _zsh(prog: str, top: list[Option], commands: list[Command]) -> str:
    fn = "_" + prog.replace("-", "_")
    described = " ".join(f"'{_zsh_text(c.name)}:{_zsh_quote(c.help)}'" for c in commands)
    lines = [f"#compdef {prog}", f"# zsh completion for {prog}; load with: source <({prog} completion zsh)",
             f"{fn}() {{", "    local state line", "    local -a commands",
             f"    commands=({described})",
             "    _arguments -C " + " ".join(_zsh_specs(top)) + " '1: :->command' '*:: :->args'",
             "    case $state in",
             f"        command) _describe -t commands '{prog} command' commands ;;",
             "        args)", "            case $words[1] in"]
    for c in commands:
        rest = f"({' '.join(c.positional_choices)})" if c.positional_choices else "_files"
        specs = " ".join(_zsh_specs(c.options) + [f"'*:argument:{rest}'"])
        lines.append(f"                {c.name}) _arguments {specs} ;;")
    lines += ["            esac ;;", "    esac", "}",
              f'if [[ "$funcstack[1]" == "{fn}" ]]; then {fn} "$@"; else compdef {fn} {prog}; fi', ""]
    return "\n".join(lines)


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(prog: str, condition: str, o: Option) -> str:
    parts = [f"complete -c {prog} -n {_fish_quote(condition)}"]
    for s in o.strings:
        parts.append(f"-l {s[2:]}" if s.startswith("--") else f"-s {s[1:]}")
    if o.takes_value:
        parts.append(f"-x -a {_fish_quote(' '.join(o.choices))}" if o.choices else ("-r -F" if o.files else "-x"))
    if o.help:
        parts.append(f"-d {_fish_quote(o.help)}")
    return " ".join(parts)


def _fish(prog: str, top: list[Option], commands: list[Command]) -> str:
    lines = [f"# fish completion for {prog}; load with: {prog} completion fish | source", f"complete -c {prog} -f"]
    lines += [_fish_option(prog, "__fish_use_subcommand", o) for o in top]
    for c in commands:
        lines.append(f"complete -c {prog} -n __fish_use_subcommand -a {c.name} -d {_fish_quote(c.help)}")
    for c in commands:
        seen = f"__fish_seen_subcommand_from {c.name}"
        lines += [_fish_option(prog, seen, o) for o in c.options]
        if c.positional_choices:
            lines.append(f"complete -c {prog} -n {_fish_quote(seen)} -a {_fish_quote(' '.join(c.positional_choices))}")
        else:
            lines.append(f"complete -c {prog} -n {_fish_quote(seen)} -F")
    return "\n".join(lines) + "\n"
