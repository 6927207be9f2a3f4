"""The README's two set-up commands stay true: CI runs the same test command."""

import re
from pathlib import Path


def setup_commands(repo: Path) -> list[str]:
    readme = (repo / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [next(line for line in b.splitlines() if line and not line.startswith("#")) for b in blocks]


def test_readme_has_exactly_two_setup_commands(repo):
    cmds = setup_commands(repo)
    assert len(cmds) == 2
    assert "skillchat" in cmds[0] and "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command(repo):
    ci = (repo / ".ci" / "run").read_text()
    test_cmd = setup_commands(repo)[1].replace("python3 -m venv", "$PY -m venv")
    assert test_cmd in ci


def test_ci_runs_the_readme_lint_commands(repo):
    section = (repo / "README.md").read_text().split("## Development", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^- `(\.venv/bin/[^`]+)`", section, re.M)
    ci = (repo / ".ci" / "run").read_text().splitlines()
    assert commands == [".venv/bin/ruff check .", ".venv/bin/mypy"]
    assert all(c in ci for c in commands)
