"""Files and handbooks that used to hang a command or take minutes and gigabytes, to the real CLI.

A FIFO given as the config or a handbook blocked every command; a `re:` indicator like `^(a+)+$`
took 16.8 s on 28 characters; a valid handbook with a 50 MB description kept `handbook show` busy
for 18 minutes; `handbook use` on a config with a 50 MB value took 26 s and 8.4 GB. Each is now
refused with one line naming the file, the problem and the limit, exit status 2. Every process has
a timeout, so a hang fails the test instead of blocking the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from skillchat.core.handbook import from_dict
from skillchat.core.handbook_format import MAX_NAME_CHARS, MAX_TEXT_CHARS
from skillchat.core.inference import PATTERN_CHARS_HEAD, KeywordInferrer
from skillchat.core.ports import Message
from skillchat.errors import HandbookError
from skillchat.reading import MAX_CONFIG_BYTES, MAX_HANDBOOK_BYTES

REPO = Path(__file__).parent.parent
TINY = Path(__file__).parent / "data" / "tiny.json"
TIMEOUT = 60  # seconds: far above what any of these takes now, far below a hang


def skillchat(*argv: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if config is not None:
        env["SKILLCHAT_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "skillchat", *argv], capture_output=True, text=True,
                          env=env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def refused(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("skillchat: "), r.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def handbook(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    doc = json.loads(TINY.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "hb.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# --- FIFOs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["route", "hello"], ["spend"], ["handbook", "list"], ["handbook", "use", "general"],
                                  ["ask", "--demo", "hello"]], ids=" ".join)
def test_a_fifo_as_config_is_refused_rather_than_waited_on(tmp_path, argv):
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    refused(skillchat(*argv, config=fifo), str(fifo), "it is a named pipe, not a regular file")


def test_a_fifo_as_handbook_is_refused_rather_than_waited_on(tmp_path):
    fifo = tmp_path / "hb.json"
    os.mkfifo(fifo)
    refused(skillchat("handbook", "show", str(fifo)), str(fifo), "named pipe, not a regular file")
    config = tmp_path / "config.toml"
    config.write_text(f'handbook = "{fifo}"\n', encoding="utf-8")
    refused(skillchat("route", "hello", config=config), "named pipe, not a regular file")


def test_a_directory_or_a_device_is_not_read_as_a_config(tmp_path):
    refused(skillchat("route", "hello", config=tmp_path), "it is a directory, not a regular file")
    refused(skillchat("handbook", "show", "/dev/zero"), "/dev/zero", "character device, not a regular file")


# --- sizes --------------------------------------------------------------------------------------
def test_a_config_over_1_mb_is_refused_and_left_as_it_was(tmp_path):
    config = tmp_path / "config.toml"
    text = 'handbook = "general"\n# ' + "x" * MAX_CONFIG_BYTES + "\n"
    config.write_text(text, encoding="utf-8")
    refused(skillchat("handbook", "use", "general", config=config), str(config), "a config file may be at most 1.0 MB")
    assert config.read_text(encoding="utf-8") == text
    refused(skillchat("route", "hello", config=config), "at most 1.0 MB")


def test_a_handbook_over_20_mb_is_refused(tmp_path):
    path = handbook(tmp_path, lambda d: d["metadata"].update(created="x" * MAX_HANDBOOK_BYTES))
    refused(skillchat("handbook", "show", str(path)), str(path), "a handbook may be at most 20.0 MB")


@pytest.mark.parametrize("where, change", [
    ("$.metadata.description", lambda d: d["metadata"].update(description="d" * 5_000_000)),
    ("$.skills[0].description", lambda d: d["skills"][0].update(description="d" * (MAX_TEXT_CHARS + 1))),
    ("$.skills[0].examples[0]", lambda d: d["skills"][0].update(examples=["e" * (MAX_TEXT_CHARS + 1)])),
    ("$.skills[0].name", lambda d: d["skills"][0].update(name="n" * (MAX_NAME_CHARS + 1))),
    ("$.agents[0].model", lambda d: d["agents"][0].update(model="m" * (MAX_NAME_CHARS + 1))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_string_over_its_limit_is_refused_with_the_limit(tmp_path, where, change):
    path = handbook(tmp_path, change)
    limit = MAX_NAME_CHARS if where.endswith((".name", ".model")) else MAX_TEXT_CHARS
    refused(skillchat("handbook", "show", str(path)), where, f"at most {limit:,} are allowed")


def test_the_shipped_handbooks_are_far_inside_the_limits():
    for path in (REPO / "handbooks").glob("*.json"):
        assert path.stat().st_size * 20 < MAX_HANDBOOK_BYTES
        from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))  # every string and pattern passes


# --- patterns -----------------------------------------------------------------------------------
def test_a_catastrophic_pattern_is_refused_when_the_handbook_is_read_naming_skill_and_pattern(tmp_path):
    def evil(d):  # type: ignore[no-untyped-def]
        d["skills"][0]["indicators"].append("re:^(a+)+$")

    path = handbook(tmp_path, evil)
    sid = json.loads(path.read_text(encoding="utf-8"))["skills"][0]["id"]
    config = tmp_path / "config.toml"
    config.write_text(f'handbook = "{path}"\n', encoding="utf-8")
    # Before: 28 characters took 16.8 s, 40 would take hours (the timeout fails the test).
    line = refused(skillchat("route", "a" * 40 + "!", config=config), str(path), "$.skills[0].indicators[",
                   f"skill {sid!r}", "'^(a+)+$'", "catastrophic backtracking")
    assert "exponential time" in line


def test_patterns_see_only_the_head_and_tail_of_a_long_message():
    doc = json.loads(TINY.read_text(encoding="utf-8"))
    doc["skills"][0]["indicators"] = ["re:\\bzqxv\\b"]
    inferrer = KeywordInferrer(from_dict(doc))
    filler = "lorem ipsum " * 1_000
    near = "zqxv " + filler
    far = filler[:PATTERN_CHARS_HEAD + 500] + " zqxv " + filler
    assert "pattern /\\bzqxv\\b/" in inferrer.infer([Message("user", near)]).skills[0].evidence
    assert all("zqxv" not in e for s in inferrer.infer([Message("user", far)]).skills for e in s.evidence)


@pytest.mark.parametrize(("pattern", "why"), [("(a|aa)+y", r"pattern '\(a\|aa\)\+y': alternatives"),
                                             ("(a?a)+y", r"pattern '\(a\?a\)\+y': an optional part")])
def test_from_dict_refuses_a_catastrophic_pattern_in_any_skill(pattern, why):
    doc = json.loads(TINY.read_text(encoding="utf-8"))
    doc["skills"][-1]["indicators"] = [f"re:{pattern}"]
    with pytest.raises(HandbookError, match=r"skill '.+': " + why):
        from_dict(doc, "t.json")
