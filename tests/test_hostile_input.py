"""Hostile input to the real CLI, each case in its own process: deeply nested files, names too long for
the file system (and far too long to echo), bytes that are not UTF-8, escape sequences, folders where
files belong. Every case must end in one clear line on stderr and exit status 2, never a traceback,
with stderr bounded whatever the size of the input, and no data file changed.

Then the two things a model can send back: escape sequences in an answer (split across streamed
chunks) and in a provider's error, which must not reach the terminal while the store keeps the answer
exactly as sent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from openai_server import FakeOpenAIServer, closed_port

pytestmark = pytest.mark.slow  # about fifty short processes, and one `ask` that imports litellm

REPO = Path(__file__).parent.parent
TINY = Path(__file__).parent / "data" / "tiny.json"
MAX_STDERR = 2_000  # bytes: one line, whatever the size of what the user gave
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
ESC = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;owned\x07\x1b[2J\x1b[?1049h"
LONG = "a" * 300
BAD_UTF8 = "\udcff\udcfe"  # how Python hands over argv bytes that are not UTF-8 (b"\xff\xfe")


def _files(tmp: Path) -> dict[str, str]:
    """Input files of the corpus, by name."""
    made = {
        "deep.json": "[" * 200_000,
        "deep-object.json": '{"a":' * 200_000,
        "deep-inside.json": '{"schema_version": 1, "metadata": ' + "[" * 200_000,
        "deep.toml": "handbook = " + "[" * 200_000,
        "deep-table.toml": "handbook = " + "{a = " * 100_000,
        "huge-name.toml": 'handbook = "' + "h" * 900_000 + '"\n',  # a 0.9 MB name (under the 1 MB limit), only ever shown cut
        "escape-name.toml": 'handbook = "\\u001b]0;owned\\u0007general"\n',
        "nul-name.toml": 'handbook = "x\\u0000.json"\n',
        "deep.jsonl": "[" * 200_000 + "\n",
        "long-number.jsonl": '{"messages": ' + "1" * 5_000 + "}\n",  # int() reads at most 4300 digits
    }
    for name, text in made.items():
        (tmp / name).write_text(text, encoding="utf-8")
    (tmp / "latin1.json").write_bytes(b'{"schema_version": 1, "metadata": {"name": "caf\xe9"}}')
    (tmp / "latin1.toml").write_bytes(b'handbook = "caf\xe9"\n')
    (tmp / "latin1.jsonl").write_bytes(b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n')
    (tmp / "folder.json").mkdir()
    (tmp / "replay").mkdir()
    (tmp / "replay" / "queries.csv").write_bytes(b"qid,text,category,split\nq1,caf\xe9,x,train\n")
    (tmp / "replay" / "outcomes.csv").write_text("qid,model,score,cost_usd,prompt_tokens,completion_tokens\n")
    good = tmp / "good-replay"
    good.mkdir()
    (good / "queries.csv").write_text("qid,text,category,split\nq1,hello,x,train\nq2,hi,x,test\n")
    (good / "outcomes.csv").write_text("qid,model,score,cost_usd,prompt_tokens,completion_tokens\n"
                                       + "".join(f"{q},{m},1,0.001,1,1\n" for q in ("q1", "q2") for m in ("m1", "m2")))
    return {p.name: str(p) for p in tmp.iterdir()}


def _cases(f: dict[str, str]) -> dict[str, list[str]]:
    """name -> argv; every one must fail with one line and exit status 2."""
    return {
        # 200,000 nested '[' : a RecursionError in json or tomllib, wherever a file is read
        "handbook validate: deep JSON": ["handbook", "validate", f["deep.json"]],
        "handbook validate: deep object": ["handbook", "validate", f["deep-object.json"]],
        "handbook show: deep inside a handbook": ["handbook", "show", f["deep-inside.json"]],
        "handbook use: deep JSON": ["handbook", "use", f["deep.json"]],
        "ask -H: deep JSON": ["ask", "--demo", "-H", f["deep.json"], "hello"],
        "route --batch: deep JSONL": ["route", "--batch", f["deep.jsonl"]],
        "route --conversation: deep JSON": ["route", "--conversation", f["deep.json"]],
        "route --batch: a 5,000-digit number": ["route", "--batch", f["long-number.jsonl"]],
        "config: deep array": ["--config", f["deep.toml"], "route", "hello"],
        "config: deep inline table": ["--config", f["deep-table.toml"], "spend"],
        "config: deep, handbook use": ["--config", f["deep.toml"], "handbook", "use", "general"],
        # names: too long for the file system, far too long to echo, escapes, NUL, not UTF-8
        "handbook show: 300-character name": ["handbook", "show", LONG],
        "handbook show: 300-character file": ["handbook", "show", LONG + ".json"],
        "handbook use: 300-character name": ["handbook", "use", LONG],
        "handbook history: 300-character name": ["handbook", "history", LONG],
        "handbook diff: 300-character name": ["handbook", "diff", LONG, "1"],
        "handbook rollback: 300-character name": ["handbook", "rollback", LONG],
        "route -H: 300-character name": ["route", "-H", LONG, "hello"],
        "ask -H: 300-character name": ["ask", "--demo", "-H", LONG, "hello"],
        "relearn: 300-character handbook": ["relearn", "--dry-run", "--handbook", LONG],
        "handbook show: version in superscript": ["handbook", "show", "general@²"],
        "handbook show: escapes in the name": ["handbook", "show", ESC],
        "handbook show: name not UTF-8": ["handbook", "show", BAD_UTF8],
        "config: 300-character path": ["--config", LONG, "route", "hello"],
        "config: a 0.9 MB handbook name": ["--config", f["huge-name.toml"], "route", "hello"],
        "config: escapes in the handbook name": ["--config", f["escape-name.toml"], "route", "hello"],
        "config: NUL in the handbook name": ["--config", f["nul-name.toml"], "route", "hello"],
        "route --conversation: 300-character file": ["route", "--conversation", LONG],
        "bench: 300-character folder": ["bench", LONG],
        "bench: escapes in the folder": ["bench", ESC],
        "bench --json: under a file": ["bench", f["good-replay"], "--json", f["latin1.json"] + "/out.json"],
        # bytes that are not UTF-8 inside files
        "handbook validate: Latin-1 file": ["handbook", "validate", f["latin1.json"]],
        "config: Latin-1 file": ["--config", f["latin1.toml"], "route", "hello"],
        "route --batch: Latin-1 file": ["route", "--batch", f["latin1.jsonl"]],
        "bench: Latin-1 queries.csv": ["bench", f["replay"]],
        # a folder where a file belongs
        "handbook show: a folder": ["handbook", "show", f["folder.json"]],
        "config: a folder": ["--config", str(Path(f["folder.json"]).parent), "route", "hello"],
        "route --batch: a folder": ["route", "--batch", f["folder.json"]],
    }


# argparse's own usage errors keep its usage lines above the one error line.
USAGE_CASES = {
    "rate: 300-digit turn id": ["rate", "9" * 300, "up"],
    "rate: escapes as the turn id": ["rate", ESC, "up"],
    "ask -c: 300-digit conversation id": ["ask", "--demo", "-c", "9" * 300, "hello"],
    "route --lambda: escapes": ["route", "--lambda", ESC, "hello"],
    "command: escapes": [ESC],
    "spend --by: 100,000 characters": ["spend", "--by", "x" * 100_000],
}


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_KEY")) and not k.startswith("SKILLCHAT_")}
    env.update(SKILLCHAT_HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True", OLLAMA_HOST=f"127.0.0.1:{closed_port()}",
               PYTHONIOENCODING="utf-8")
    return env


def _run(argv: list[str], home: Path, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skillchat", *argv], input=stdin, capture_output=True,
                          env=_env(home), cwd=home, timeout=timeout)


def _snapshot(home: Path) -> dict[str, str]:
    """Every data file under home, by content (SQLite's transient -wal/-shm files aside)."""
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def _seed(home: Path) -> None:
    """A conversation in the store, so that "no data file changed" covers the database (in this
    process: a new one would spend most of its time importing litellm)."""
    from skillchat.cli import main

    saved = os.environ.get("SKILLCHAT_HOME")
    os.environ["SKILLCHAT_HOME"] = str(home)
    try:
        assert main(["ask", "--demo", "-q", "a first question"]) == 0
    finally:
        if saved is None:
            del os.environ["SKILLCHAT_HOME"]
        else:
            os.environ["SKILLCHAT_HOME"] = saved


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Any]:
    """Runs every case (four processes at a time), each in a copy of one seeded home."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "files").mkdir()
    files = _files(root / "files")
    seed = root / "seed"
    (seed / "config").mkdir(parents=True)
    (seed / "config" / "config.toml").write_text('handbook = "general"\nlambda = 0.2\n', encoding="utf-8")
    _seed(seed)
    cases = {**_cases(files), **USAGE_CASES}

    def one(item: tuple[int, tuple[str, list[str]]]) -> tuple[str, Any]:
        i, (name, argv) = item
        home = root / f"case{i}"
        shutil.copytree(seed, home)
        before = _snapshot(home)
        p = _run(argv, home)
        return name, (p, before, _snapshot(home))

    with ThreadPoolExecutor(max_workers=4) as pool:  # start-up waits on the disk more than the CPU
        return dict(pool.map(one, enumerate(cases.items())))


def _check(result: Any, *, usage: bool) -> str:
    p, before, after = result
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert not CONTROL.search(err.replace("\n", "")), repr(err[:500])
    assert p.stdout == b""
    assert after == before, "a data file changed"
    lines = err.splitlines()
    if usage:
        assert lines[0].startswith("usage:") and lines[-1].startswith("skillchat") and ": error: " in lines[-1]
        assert len(lines[-1].encode()) <= MAX_STDERR
    else:
        assert len(lines) == 1 and lines[0].startswith("skillchat: "), err
        assert len(p.stderr) <= MAX_STDERR, f"{len(p.stderr):,} bytes on stderr"
    return err


class _Names(dict):
    """Stands in for the files when only the names of the cases are needed."""

    def __missing__(self, key: str) -> str:
        return key


@pytest.mark.parametrize("name", list(_cases(_Names())))
def test_hostile_input_is_one_line_and_exit_2(corpus, name):
    err = _check(corpus[name], usage=False)
    if "300-character" in name or "0.9 MB" in name:
        assert "characters)" in err  # the name is shown cut, with its length


@pytest.mark.parametrize("name", list(USAGE_CASES))
def test_hostile_arguments_are_usage_errors(corpus, name):
    _check(corpus[name], usage=True)


def test_the_messages_name_the_file_and_the_problem(corpus):
    def err(name: str) -> str:
        return corpus[name][0].stderr.decode("utf-8", "replace")

    assert "deep.json: nested too deeply" in err("handbook validate: deep JSON")
    assert "deep.toml: not valid TOML: nested too deeply" in err("config: deep array")
    assert "latin1.json: cannot read it (not valid UTF-8 (byte 0xe9" in err("handbook validate: Latin-1 file")
    assert "no handbook named 'aaaa" in err("handbook show: 300-character name")
    assert "File name too long" in err("handbook show: 300-character file")
    assert "\\x1b]52;c;" in err("handbook show: escapes in the name")  # written out, not obeyed
    assert "NUL" in err("config: NUL in the handbook name")
    assert "latin1.json is not a folder" in err("bench --json: under a file")


# --- ask: the question is kept, whatever its bytes -------------------------------------------

@pytest.fixture
def home(tmp_path) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(f'handbook = "{TINY}"\n', encoding="utf-8")
    return tmp_path


def _messages(home: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(home / "data" / "traces.db") as db:
        return db.execute("SELECT conversation_id, role, content FROM messages ORDER BY id").fetchall()


@pytest.mark.parametrize("how", ["stdin", "argv"])
def test_ask_keeps_a_question_that_is_not_utf8(home, how, monkeypatch, capsys):
    """Bytes that are not UTF-8 each become U+FFFD and the question is asked: nothing is lost, and
    no empty conversation is left behind (before, the message failed to store after it was created).

    In this process: Python hands argv bytes that are not UTF-8 over as lone surrogates, as here,
    and stdin is read as bytes."""
    from skillchat.cli import main

    monkeypatch.setenv("SKILLCHAT_HOME", str(home))
    raw = b"\xff\xfewhy is caf\xe9 slow?"
    if how == "stdin":
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
        argv = ["ask", "--demo"]
    else:
        argv = ["ask", "--demo", raw.decode("utf-8", "surrogateescape")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "not valid UTF-8: 3 bytes" in err.splitlines()[0] and out.strip()
    assert _messages(home)[0][1:] == ("user", "\ufffd\ufffdwhy is caf\ufffd slow?")


def test_ask_keeps_a_1mb_question_with_nul_bytes(home, monkeypatch, capsys):
    """A 1 MB paste with NUL bytes in it (only stdin can carry either: argv holds at most 128 KB
    and no NUL) is asked and stored exactly; nothing printed carries a control character."""
    from skillchat.cli import main

    monkeypatch.setenv("SKILLCHAT_HOME", str(home))
    question = "why\x00 is this slow? " + "x" * (1 << 20) + "\x00 end"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(question.encode())))
    assert main(["ask", "--demo"]) == 0
    out, err = capsys.readouterr()
    assert "why is this slow?" in out
    assert not CONTROL.search(out.replace("\n", "")) and not CONTROL.search(err.replace("\n", ""))
    assert len(out) < 10_000 and len(err) < 10_000  # the demo echoes the question cut short
    assert _messages(home)[0][1:] == ("user", question)


# --- what a model sends back -----------------------------------------------------------------

ANSWER = [  # every sequence split across two chunks somewhere
    "Here \x1b]52;c;", "cm0gLXJmIH4=\x07 is \x1b", "]0;owned\x1b", "\\ the \x1b[2", "J answer \x1b[?1049", "h with ",
    "\x1b]8;;https://evil.example/\x1b\\a link\x1b]8;;\x1b", "\\ and \x9b", "31m C1 \x07\x08\r", "[bold]markup[/bold].\n",
]


def test_ask_prints_no_escape_sequence_but_stores_the_answer_as_sent(home):
    """One real `ask`: the pinned agent fails with an error full of escapes, the fallback streams an
    answer full of them, split across chunks."""
    with FakeOpenAIServer() as server:
        server.behaviour["beta"] = "500"
        server.error_text = " \x1b]0;owned by the error\x07\x1b[2J [/] " + "x" * 100_000
        server.chunks["alpha"] = ANSWER
        agents = "".join(f'\n[[agents]]\nid = "{a}"\nmodel = "openai/{m}"\napi_base = "{server.api_base}"\n'
                         f'api_key_env = "FAKE_SERVER_KEY"\n' for a, m in (("big", "alpha"), ("mid", "beta")))
        (home / "config" / "config.toml").write_text(f'handbook = "{TINY}"\n{agents}', encoding="utf-8")
        p = subprocess.run([sys.executable, "-m", "skillchat", "ask", "-m", "mid", "hello"], capture_output=True,
                           env={**_env(home), "FAKE_SERVER_KEY": "k" * 12}, timeout=180)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 0, err
    assert not CONTROL.search(out.replace("\n", "")), repr(out)
    assert not CONTROL.search(err.replace("\n", "")), repr(err[:300])
    assert out == "Here  is  the  answer  with a link and  C1 [bold]markup[/bold].\n"
    # The provider's error: one short line, cleaned.
    failure = next(line for line in err.splitlines() if "mid failed" in line)
    assert "scripted failure 500" in failure and "[/]" in failure and "owned" not in failure and len(failure) < 1_200
    # The store keeps exactly what the model sent.
    assert [c for _, r, c in _messages(home) if r == "assistant"] == ["".join(ANSWER)]


def test_handbook_names_are_shown_as_text_never_as_markup_or_escapes(tmp_path):
    """A shared handbook is input too: its names reach tables that would read "[/]" as markup."""
    hb = json.loads(TINY.read_text())
    bad = "\x1b]0;owned\x07[/][link=https://evil.example]x[/link]"
    for key in ("modes", "skills", "agents"):
        for item in hb[key]:
            item["name"] += bad
    hb["metadata"]["description"] += bad
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(hb))
    for argv in (["handbook", "show", str(path)], ["route", "-H", str(path), "my python loop is too slow"]):
        p = _run(argv, tmp_path)
        out = p.stdout.decode()
        assert p.returncode == 0, p.stderr.decode()[-1000:]
        assert "[/][link=https://evil.example]x[/link]" in out and not CONTROL.search(out.replace("\n", ""))
