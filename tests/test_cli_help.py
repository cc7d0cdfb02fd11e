"""The CLI documents itself: complete --help for every subcommand and option, --version, and
shell completion scripts generated from the parser."""
import argparse
import shutil
import subprocess

import pytest

import gradfit
from gradfit.cli import build_parser, main
from gradfit.cli.completion import completion_script, describe


def subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, action


def run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's --help and --version exit
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_top_level_help_lists_every_command(capsys):
    _, action = subparsers()
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for name in action.choices:
        assert name in out
    assert {"grad", "demo", "fit", "predict", "completion"} <= set(action.choices)


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"gradfit {gradfit.__version__}"


@pytest.mark.parametrize("name", sorted(subparsers()[1].choices))
def test_every_option_has_help_and_every_command_an_example(name, capsys):
    _, action = subparsers()
    helps = {a.dest: a.help for a in action._choices_actions}
    assert helps.get(name), f"subcommand {name} has no one-line help in 'gradfit --help'"
    sub = action.choices[name]
    for a in sub._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        text = (a.help or "").replace("(default: %(default)s)", "").strip()
        assert any(ch.isalpha() for ch in text), f"gradfit {name}: {a.option_strings or a.dest} has no help text"
    assert sub.epilog and f"gradfit {name}" in sub.epilog, f"gradfit {name} --help has no example"
    code, out, _ = run([name, "--help"], capsys)
    assert code == 0 and "examples:" in out
    assert f"\n  gradfit {name}" in out  # the examples keep their own lines


def test_completion_command_prints_the_script(capsys):
    code, out, _ = run(["completion", "bash"], capsys)
    assert code == 0 and out == completion_script("bash", build_parser())
    code, _, err = run(["completion", "tcsh"], capsys)
    assert code == 2 and "invalid choice" in err


def _bash_complete(script_path, words, cword):
    cmd = (f"source {script_path}; COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={cword}; "
           "_gradfit; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_is_valid_and_completes(tmp_path):
    script = tmp_path / "gradfit.bash"
    script.write_text(completion_script("bash"))
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert _bash_complete(script, ["gradfit", "f"], 1) == ["fit"]
    assert _bash_complete(script, ["gradfit", "--v"], 1) == ["--version"]
    assert _bash_complete(script, ["gradfit", "fit", "d.csv", "--lo"], 3) == ["--loss", "--log-every"]
    assert _bash_complete(script, ["gradfit", "fit", "--loss", ""], 3) == ["l2", "l1", "huber", "quantile"]
    assert _bash_complete(script, ["gradfit", "completion", "z"], 2) == ["zsh"]
    (tmp_path / "data.csv").write_text("x,y\n")
    assert _bash_complete(script, ["gradfit", "fit", str(tmp_path / "da")], 2) == [str(tmp_path / "data.csv")]


def test_every_option_is_in_every_script():
    top, commands = describe(build_parser())
    scripts = {shell: completion_script(shell) for shell in ("bash", "zsh", "fish")}
    for c in commands:
        for o in c.options:
            for s in o.strings:
                assert s in scripts["bash"] and f"'{s}[" in scripts["zsh"], (c.name, s)
                flag = f"-l {s[2:]}" if s.startswith("--") else f"-s {s[1:]}"
                assert flag in scripts["fish"], (c.name, s)
        assert f"-a {c.name} " in scripts["fish"] and f"'{c.name}:" in scripts["zsh"]


@pytest.mark.parametrize("shell,check", [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_zsh_and_fish_scripts_parse(tmp_path, shell, check):
    if shutil.which(check[0]) is None:
        pytest.skip(f"{shell} is not installed")
    script = tmp_path / f"gradfit.{shell}"
    script.write_text(completion_script(shell))
    out = subprocess.run(check + [str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion_completes(tmp_path):
    script = tmp_path / "gradfit.fish"
    script.write_text(completion_script("fish"))

    def complete(line):
        out = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert complete("gradfit f") == ["fit"]
    assert sorted(complete("gradfit fit --loss ")) == ["huber", "l1", "l2", "quantile"]
    assert complete("gradfit completion z") == ["zsh"]
