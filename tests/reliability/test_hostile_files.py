"""A corpus of hostile handbooks and configs, each given to the real CLI in its own process.

The files are made here, from the test handbook and a small config: cut short, every field given the
wrong type, numbers too big or not numbers at all, duplicate and unknown ids, empty strings, escapes
and control characters in names, bytes that are not UTF-8, byte order marks, symlink loops and
folders where a file belongs. Each is given one command in turn (`handbook show/validate/use`,
`route`, `ask`, `spend`, `doctor`; every other one is `handbook use`, the command that writes), and
must end in exit status 2 with exactly one line on stderr that
names the file, no traceback, and not one byte changed under SKILLCHAT_HOME (the config, the
database, the saved handbooks: hashed before and after). FIFOs and huge files are left to the size
and blocking checks of the file readers (tests of their own).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openai_server import closed_port

pytestmark = pytest.mark.reliability

TINY = Path(__file__).parent.parent / "data" / "tiny.json"
BASE: dict[str, Any] = json.loads(TINY.read_text(encoding="utf-8"))
CONFIG = 'handbook = "tiny@1"\nlambda = 0.2\n[budget]\ndaily_usd = 2.0\n'
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
ESC = "\x1b]0;owned\x07\x1b[2J"
MAX_STDERR = 2_000
WORKERS = 2  # the machine is shared; start-up is most of each run


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "handbook" (given as a file argument) or "config" (at the config file's place)
    make: Callable[[Path], None]  # writes the hostile file at this path
    writers: bool = True  # may be given the command that writes (handbook use)
    needs_non_root: bool = False
    named: str | None = None  # what the error line must name, if not the file


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(data)


def _text(text: str) -> Callable[[Path], None]:
    return _bytes(text.encode("utf-8"))


def _doc(mutate: Callable[[dict[str, Any]], Any]) -> bytes:
    d = copy.deepcopy(BASE)
    mutate(d)
    return json.dumps(d, ensure_ascii=False).encode("utf-8")


def _loop(p: Path) -> None:
    other = p.with_name(p.name + ".other")
    p.symlink_to(other.name)
    other.symlink_to(p.name)


def _dangling(p: Path) -> None:
    p.symlink_to(p.name + ".gone")


def _folder(p: Path) -> None:
    p.mkdir()


def _unreadable(content: bytes) -> Callable[[Path], None]:
    def make(p: Path) -> None:
        p.write_bytes(content)
        p.chmod(0)
    return make


def _get(d: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        d = d[k]
    return d


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(d: dict[str, Any]) -> None:
        _get(d, path[:-1])[path[-1]] = value
    return mutate


def _wrong(value: Any) -> Any:
    """A value of another JSON type."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 7
    if isinstance(value, list):
        return {"0": value[0] if value else None}
    return [value]


def _fields(d: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every field of the test handbook that is validated: the first of each list stands for all."""
    out = [path] if path else []
    if isinstance(d, dict):
        for k, v in d.items():
            if k not in ("history", "examples", "indicators"):  # lists of free text, checked elsewhere
                out += _fields(v, (*path, k))
    elif isinstance(d, list) and d:
        out += _fields(d[0], (*path, 0))
    return out


def _handbook_cases() -> list[Case]:
    text = json.dumps(BASE)
    raw: dict[str, bytes] = {
        # cut short, and not a handbook at all
        **{f"truncated at {pct}%": text[: len(text) * pct // 100].encode() for pct in (1, 10, 50, 90, 99)},
        "empty file": b"",
        "only whitespace": b" \n\t\n",
        "null": b"null",
        "a list": b"[]",
        "a string": b'"handbook"',
        "a number": b"42",
        "a NUL byte": b"\x00",
        "JSON with a NUL byte inside": text.encode()[:40] + b"\x00" + text.encode()[40:],
        "trailing garbage": text.encode() + b"}",
        "two documents": text.encode() + b"\n" + text.encode(),
        # encodings
        "invalid UTF-8 in a name": text.replace('"Debugging"', '"Deb\udcffugging"').encode("utf-8", "surrogateescape"),
        "Latin-1": text.replace("A small", "Caf\u00e9: a small").encode("latin-1"),
        "UTF-8 byte order mark": b"\xef\xbb\xbf" + text.encode(),
        "UTF-16": text.encode("utf-16"),
        "lone surrogate escape in the name": text.replace('"name": "tiny"', '"name": "\\ud800tiny"').encode(),
        # nesting
        "200,000 nested lists": b"[" * 200_000,
        "deep nesting inside metadata": text.replace('"metadata": {', '"metadata": ' + "{\"a\": " * 100_000 + "{").encode(),
        # numbers JSON has no words for, and numbers far out of range
        "NaN prior mean": text.replace('"mean": 0.8', '"mean": NaN').encode(),
        "Infinity context window": text.replace('"context_window": 200000', '"context_window": Infinity').encode(),
        "-Infinity price": text.replace('"input_per_mtok": 10', '"input_per_mtok": -Infinity').encode(),
        "1e400 prior strength": text.replace('"prior_strength": 12.0', '"prior_strength": 1e400').encode(),
        "a 400-digit version": text.replace('"version": 1', '"version": 1' + "0" * 400).encode(),
        "a 5,000-digit version": text.replace('"version": 1', '"version": 1' + "0" * 5_000).encode(),
    }
    docs: dict[str, Callable[[dict[str, Any]], Any]] = {
        "schema version 2": lambda d: d.update(schema_version=2),
        "no schema version": lambda d: d.pop("schema_version"),
        "no metadata": lambda d: d.pop("metadata"),
        "version 0": _set(("metadata", "version"), 0),
        "version -1": _set(("metadata", "version"), -1),
        "version 1.5": _set(("metadata", "version"), 1.5),
        "version true": _set(("metadata", "version"), True),
        "version 10**30": _set(("metadata", "version"), 10**30),
        "parent version 2**63": _set(("metadata", "parent_version"), 2**63),
        "context window 1e40": _set(("agents", 0, "context_window"), 1e40),
        "context window 10**30": _set(("agents", 0, "context_window"), 10**30),
        "completion tokens -1": _set(("modes", 0, "completion_tokens"), -1),
        "prior mean 0": _set(("agents", 0, "prior", "mean"), 0),
        "prior mean 1e308": _set(("agents", 0, "prior", "mean"), 1e308),
        "price 1e300": _set(("agents", 0, "price", "output_per_mtok"), 1e300),
        "successes 1e308": lambda d: d.update(competence={"big": {"code.debugging": {"successes": 1e308, "failures": 0}}}),
        "failures -1": lambda d: d.update(competence={"big": {"code.debugging": {"successes": 1, "failures": -1}}}),
        "floors adding past 1": lambda d: d["settings"].update(exploration_floor=0.6, quality_floor=0.6),
        # ids: duplicate, unknown, empty, with escapes and control characters
        "duplicate mode id": lambda d: d["modes"].append(copy.deepcopy(d["modes"][0])),
        "duplicate skill id": lambda d: d["skills"].append(copy.deepcopy(d["skills"][0])),
        "duplicate agent id": lambda d: d["agents"].append(copy.deepcopy(d["agents"][0])),
        "unknown agent in competence": lambda d: d.update(competence={"ghost": {}}),
        "unknown skill in competence": lambda d: d.update(competence={"big": {"ghost.skill": {"successes": 1}}}),
        "unknown agent in costs": lambda d: d.update(costs={"ghost": {}}),
        "unknown mode in costs": lambda d: d.update(costs={"big": {"ghost": {}}}),
        "unknown mode in a prior": _set(("agents", 0, "prior", "modes", "ghost"), 0.5),
        "unknown skill in a prior": lambda d: d["agents"][0]["prior"].update(skills={"ghost.skill": 0.5}),
        "unknown mode of a skill": _set(("skills", 0, "mode"), "ghost"),
        "unknown parent skill": _set(("skills", 0, "parent"), "ghost.skill"),
        "a skill that is its own parent": _set(("skills", 0, "parent"), BASE["skills"][0]["id"]),
        "a cycle of parents": lambda d: (d["skills"][0].update(parent=d["skills"][1]["id"]),
                                         d["skills"][1].update(parent=d["skills"][0]["id"])),
        "unknown fallback skill": _set(("settings", "fallback_skill"), "ghost.skill"),
        "no modes": lambda d: d.update(modes=[]),
        "no agents": lambda d: d.update(agents=[]),
        "empty name": _set(("metadata", "name"), ""),
        "empty mode id": _set(("modes", 0, "id"), ""),
        "empty skill id": _set(("skills", 0, "id"), ""),
        "empty agent id": _set(("agents", 0, "id"), ""),
        "empty model": _set(("agents", 0, "model"), ""),
        "blank model": _set(("agents", 0, "model"), " \t"),
        "empty fallback skill": _set(("settings", "fallback_skill"), ""),
        "escapes in the name": _set(("metadata", "name"), "tiny" + ESC),
        "escapes in an agent id": _set(("agents", 0, "id"), "big" + ESC),
        "a line break in a skill id": _set(("skills", 0, "id"), "code.\ndebugging"),
        "a NUL in a mode id": _set(("modes", 0, "id"), "co\x00de"),
        "escapes in an unknown agent in competence": lambda d: d.update(competence={ESC: {}}),
        "escapes in an unknown skill in competence": lambda d: d.update(competence={"big": {"x" + ESC: {}}}),
        "escapes in a bad regular expression": lambda d: d["skills"][0]["indicators"].append("re:(" + ESC),
        "C1 controls in an unknown mode": _set(("skills", 0, "mode"), "\x9b31m\x85"),
    }
    # Every validated field, given a value of the wrong type.
    for path in _fields(BASE):
        value = _get(BASE, path)
        docs.setdefault(f"wrong type at {'.'.join(map(str, path))}", _set(path, _wrong(value)))

    cases = [Case(n, "handbook", _bytes(b)) for n, b in raw.items()]
    cases += [Case(n, "handbook", _bytes(_doc(m))) for n, m in docs.items()]
    cases += [
        Case("a symlink loop", "handbook", _loop),
        Case("a dangling symlink", "handbook", _dangling),
        Case("a folder", "handbook", _folder),
        Case("unreadable (chmod 000)", "handbook", _unreadable(TINY.read_bytes()), needs_non_root=True),
    ]
    return cases


def _config_cases() -> list[Case]:
    agent = '[[agents]]\nid = "mine"\nmodel = "openai/llama"\napi_base = "http://127.0.0.1:9/v1"\n'
    texts: dict[str, str] = {
        # cut short
        **{f"truncated at {n} characters": CONFIG[:n] for n in (6, 12, 26, 40, 50)},
        "an unterminated string": 'handbook = "tiny\n',
        "an unterminated table header": "[budget\n",
        "a key with no value": "lambda =\n",
        "a duplicate key": "lambda = 0.2\nlambda = 0.3\n",
        "a duplicate table": "[budget]\n[budget]\n",
        "a raw control character": 'handbook = "ti\x1bny"\n',
        "a raw NUL": 'handbook = "ti\x00ny"\n',
        "200,000 nested arrays": "lambda = " + "[" * 200_000,
        # wrong types, top level
        "handbook is a number": "handbook = 1\n",
        "lambda is text": 'lambda = "0.5"\n',
        "demo is text": 'demo = "yes"\n',
        "explore is a number": "explore = 1\n",
        "timeout is a list": "timeout = [60]\n",
        "budget is a number": "budget = 1\n",
        "agents is text": 'agents = "all"\n',
        "agents is a list of numbers": "agents = [1]\n",
        "keymap is a number": "keymap = 1\n",
        "a keymap binding is a number": "[keymap]\nrate_up = 1\n",
        # numbers
        "lambda nan": "lambda = nan\n",
        "lambda inf": "lambda = inf\n",
        "lambda 1e309 (read as infinity)": "lambda = 1e309\n",
        "lambda 11": "lambda = 11\n",
        "lambda -0.1": "lambda = -0.1\n",
        "timeout 0": "timeout = 0\n",
        "timeout 1e300": "timeout = 1e300\n",
        "timeout -inf": "timeout = -inf\n",
        "daily budget nan": "[budget]\ndaily_usd = nan\n",
        "daily budget -1": "[budget]\ndaily_usd = -1\n",
        "monthly budget 1e300": "[budget]\nmonthly_usd = 1e300\n",
        "soft budget is text": '[budget]\nsoft_daily_usd = "1"\n',
        "an integer past 64 bits": "timeout = 99999999999999999999999\n",
        "a 5,000-digit integer": "timeout = 1" + "0" * 5_000 + "\n",
        # unknown and forbidden settings
        "an unknown setting": "colour = 1\n",
        "an unknown budget setting": "[budget]\nyearly_usd = 1\n",
        "an unknown agent setting": agent + "temperature = 2\n",
        "a key in the config": agent + 'api_key = "sk-0123456789abcdef"\n',
        # agents
        "duplicate agent ids": agent + agent,
        "an agent without an id": '[[agents]]\nmodel = "openai/llama"\n',
        "an agent id is a number": "[[agents]]\nid = 1\n",
        "an empty agent id": '[[agents]]\nid = ""\n',
        "an empty model": '[[agents]]\nid = "mine"\nmodel = ""\n',
        "an empty api_base": agent + 'api_base = ""\n',
        "an empty api_key_env": '[[agents]]\nid = "mine"\napi_key_env = ""\n',
        "an empty agent name": '[[agents]]\nid = "mine"\nname = ""\n',
        "a model that is a table": '[[agents]]\nid = "mine"\nmodel = {a = 1}\n',
        "context window 1e40": '[[agents]]\nid = "mine"\ncontext_window = 1e40\n',
        "context window 1.5": '[[agents]]\nid = "mine"\ncontext_window = 1.5\n',
        "context window inf": '[[agents]]\nid = "mine"\ncontext_window = inf\n',
        "input price nan": '[[agents]]\nid = "mine"\ninput_per_mtok = nan\n',
        "output price -1": '[[agents]]\nid = "mine"\noutput_per_mtok = -1\n',
        "enabled is text": '[[agents]]\nid = "mine"\nenabled = "no"\n',
    }
    # Valid config files naming a handbook that cannot be: the message names the handbook, and
    # `handbook use` may rightly fix these.
    unusable = {
        "an unknown handbook": ('handbook = "ghost"\n', "no handbook named 'ghost'"),
        "escapes in the handbook name": ('handbook = "\\u001b]0;owned\\u0007tiny"\n', "no handbook named '\\x1b]0;owned"),
        "a NUL in the handbook name": ('handbook = "tiny\\u0000.json"\n', "a file name cannot hold a NUL"),
        "a handbook that is a folder": ('handbook = "/"\n', "/: cannot read it"),
        "a 300-character handbook name": (f'handbook = "{"h" * 300}"\n', "(300 characters): no handbook named"),
    }
    raw: dict[str, bytes] = {
        "invalid UTF-8": b'handbook = "caf\xe9"\n',
        "UTF-8 byte order mark": b"\xef\xbb\xbf" + CONFIG.encode(),
        "UTF-16": CONFIG.encode("utf-16"),
        "only a NUL byte": b"\x00",
    }
    cases = [Case(n, "config", _text(t)) for n, t in texts.items()]
    cases += [Case(n, "config", _text(t), writers=False, named=named) for n, (t, named) in unusable.items()]
    cases.append(Case("an empty handbook name", "config", _text('handbook = ""\n')))
    cases += [Case(n, "config", _bytes(b)) for n, b in raw.items()]
    cases += [
        Case("a symlink loop", "config", _loop),
        Case("a dangling symlink", "config", _dangling),
        Case("a folder", "config", _folder),
        Case("unreadable (chmod 000)", "config", _unreadable(CONFIG.encode()), needs_non_root=True),
    ]
    return cases


CASES = {f"{c.kind}: {c.name}": c for c in _handbook_cases() + _config_cases()}


def _command(case: Case, file: Path, i: int) -> list[str]:
    """One command per case, in turn; every other one is the command that writes."""
    if case.kind == "handbook":
        f = str(file)
        readers = [["handbook", "show", f], ["handbook", "validate", f], ["route", "-H", f, "hello"],
                   ["ask", "--demo", "-q", "-H", f, "hello"]]
        writer = ["handbook", "use", f]
    else:
        readers = [["route", "hello"], ["ask", "--demo", "-q", "hello"]]
        if case.writers:
            readers += [["spend"], ["handbook", "list"], ["doctor"]]
        writer = ["handbook", "use", "general"] if case.writers else readers[0]
    return writer if i % 2 == 0 else readers[i // 2 % len(readers)]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_KEY")) and not k.startswith("SKILLCHAT_")}
    env.update(SKILLCHAT_HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True", OLLAMA_HOST=f"127.0.0.1:{closed_port()}",
               PYTHONIOENCODING="utf-8")
    return env


def _run(argv: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skillchat", *argv], capture_output=True, env=_env(home),
                          cwd=home, timeout=120)


def _snapshot(home: Path) -> dict[str, str]:
    """Every entry under home: files by content, links by target, folders by name (SQLite's -wal
    and -shm aside: a reader may make them)."""
    out: dict[str, str] = {}
    for top, dirs, files in os.walk(home):
        for name in dirs + files:
            p = Path(top, name)
            key = str(p.relative_to(home))
            if p.is_symlink():
                out[key] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[key] = "folder"
            elif not name.endswith(("-wal", "-shm")):
                out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _seed(home: Path) -> None:
    """A config, a saved handbook (tiny@1) and a conversation in the database."""
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(CONFIG, encoding="utf-8")
    (home / "data" / "handbooks" / "tiny").mkdir(parents=True)
    shutil.copy(TINY, home / "data" / "handbooks" / "tiny" / "v1.json")
    p = _run(["ask", "--demo", "-q", "a first question"], home)
    assert p.returncode == 0, p.stderr.decode()


def _clear(p: Path) -> None:
    for q in (p, p.with_name(p.name + ".other")):
        if q.is_symlink() or q.is_file():
            q.unlink()
        elif q.is_dir():
            shutil.rmtree(q)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Any]:
    """Runs every case, each worker in its own seeded home, one case at a time."""
    root = tmp_path_factory.mktemp("hostile-files")
    seed = root / "seed"
    _seed(seed)
    as_root = os.geteuid() == 0
    todo = [(i, name, c) for i, (name, c) in enumerate(CASES.items()) if not (c.needs_non_root and as_root)]

    def worker(w: int) -> dict[str, Any]:
        home = root / f"home{w}"
        shutil.copytree(seed, home, symlinks=True)
        files = home / "files"
        files.mkdir()
        config = home / "config" / "config.toml"
        out = {}
        for i, name, case in todo[w::WORKERS]:
            target = files / f"case-{i}.json" if case.kind == "handbook" else config
            _clear(target)
            case.make(target)
            before = _snapshot(home)
            argv = _command(case, target, i)
            p = _run(argv, home)
            after = _snapshot(home)
            for q in (target, target.with_name(target.name + ".other")):
                if q.exists() and not q.is_symlink():
                    q.chmod(0o755 if q.is_dir() else 0o644)
            _clear(target)
            config.write_text(CONFIG, encoding="utf-8")
            out[name] = (case.named or target.name, argv, p, before, after)
        return out

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        merged: dict[str, Any] = {}
        for part in pool.map(worker, range(WORKERS)):
            merged.update(part)
    return merged


def test_the_corpus_holds_at_least_100_files():
    assert len(CASES) >= 100
    assert sum(c.kind == "handbook" for c in CASES.values()) >= 50
    assert sum(c.kind == "config" for c in CASES.values()) >= 50


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_file_is_one_clear_line_and_changes_nothing(results, name):
    if name not in results:
        pytest.skip("running as root: chmod 000 does not stop root reading a file")
    named, argv, p, before, after = results[name]
    err = p.stderr.decode("utf-8", "replace")
    shown = " ".join(a if len(a) < 60 else a[:60] + "..." for a in argv)
    assert p.returncode == 2, f"{shown}: exit {p.returncode}\n{err[-2000:]}"
    assert "Traceback" not in err, f"{shown}\n{err[-2000:]}"
    assert p.stdout == b"", f"{shown}: {p.stdout[:300]!r}"
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("skillchat: "), f"{shown}\n{err[-2000:]}"
    assert len(p.stderr) <= MAX_STDERR, f"{shown}: {len(p.stderr):,} bytes on stderr"
    assert not CONTROL.search(lines[0]), f"{shown}: {lines[0][:500]!r}"
    assert named in lines[0], f"{shown}: the message does not name {named}: {lines[0]}"
    assert after == before, f"files changed: {sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))}"
