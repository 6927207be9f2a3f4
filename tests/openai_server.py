"""A local OpenAI-compatible server on 127.0.0.1 for tests: real HTTP, real SSE, scripted failures.

    server.behaviour["alpha"] = "500"   # the model named "alpha" (after any provider prefix) fails

    server.chunks["alpha"] = ["Hel", "lo"]  # "alpha" streams exactly these deltas as its answer
    server.error_text = "..."          # appended to the message of every scripted failure

Behaviours: ok | 500 | 429 | 401 | break (the body stops short of its Content-Length mid-answer) |
truncate (the stream ends cleanly but without a finish_reason) | stall (no answer for a while) |
slow (each word of the answer `word_delay_s` after the last: a client can be killed mid-stream) |
garbage (a line that is not JSON mid-answer) | html (200 with an HTML page instead of a stream) |
nousage (no usage chunk, even when asked for one) | long (an answer of `long_tokens` one-token words,
cut at the request's max_tokens as a real server does, with usage to match).
It also answers GET /v1/models (a LiteLLM proxy's model list) and GET /api/tags (Ollama's).
Every request is recorded with its headers, so tests can check what reached the wire.

`answer_words` and `word_interval_s` make it answer like a model decoding at a steady pace;
`python tests/openai_server.py --words 200 --rate 80` serves that way until killed, printing its
api_base first (benchmarks/bench_ask.py uses it).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

USAGE = {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}


class FakeOpenAIServer:
    def __init__(self) -> None:
        self.behaviour: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.models = ["alpha", "beta", "gamma"]
        self.ollama_models = ["llama3.1:latest"]
        self.stall_s = 3.0
        self.word_delay_s = 0.05
        self.echo_auth = False  # put the Authorization header into error bodies, as careless servers do
        self.long_tokens = 2000  # length of a "long" answer, before any max_tokens
        self.piece_delay_s = 0.0  # pause after every streamed piece, whatever the behaviour
        self.chunks: dict[str, list[str]] = {}
        self.error_text = ""
        self.answer_words = 0  # > 0: answer with this many words (one chunk and one token each), not an echo
        self.word_interval_s = 0.0  # pause before each chunk, as a model takes time for each token
        self.chunked = False  # frame streams with Transfer-Encoding: chunked, as uvicorn and llama.cpp do
        self.hangups = 0  # streams the client closed before the end
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append({"path": self.path, "headers": headers, "body": None})
                if self.path.endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})
                elif self.path == "/api/tags":
                    self._json(200, {"models": [{"name": m, "model": m} for m in server.ollama_models]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append({"path": self.path, "headers": headers, "body": req})
                model = req["model"].rsplit("/", 1)[-1]
                how = server.behaviour.get(model, "ok")
                if how in ("500", "429", "401"):
                    msg = f"scripted failure {how}"
                    if server.echo_auth:
                        msg += f" (you sent {self.headers.get('Authorization')})"
                    msg += server.error_text
                    self._json(int(how), {"error": {"message": msg, "type": "test", "code": how}})
                    return
                if how == "stall":
                    time.sleep(server.stall_s)
                if how == "html":
                    body = b"<html><body>Welcome to the captive portal</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                echo = f"Echo from {model}: " + req["messages"][-1]["content"]
                reply = "".join(server.chunks[model]) if model in server.chunks else echo
                usage, finish = USAGE, "stop"
                if server.answer_words:
                    reply = " ".join(f"w{i}" for i in range(server.answer_words))
                    usage = {"prompt_tokens": 6, "completion_tokens": server.answer_words,
                             "total_tokens": 6 + server.answer_words}
                if how == "long":
                    n = server.long_tokens
                    if isinstance(req.get("max_tokens"), int) and req["max_tokens"] < n:
                        n, finish = req["max_tokens"], "length"
                    reply = " ".join(["tok"] * n)
                    usage = {"prompt_tokens": 6, "completion_tokens": n, "total_tokens": 6 + n}
                base = {"id": "chatcmpl-test", "created": int(time.time()), "model": req["model"]}
                if not req.get("stream"):
                    self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": finish}]})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if server.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif how == "break":
                    self.send_header("Content-Length", "100000")
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = {**base, "object": "chat.completion.chunk"}

                def send(obj: Any) -> None:
                    data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
                    if server.chunked:
                        data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
                    self.wfile.write(data)
                    self.wfile.flush()

                try:
                    self._stream(req, chunk, how, reply, usage, send, finish)
                except OSError:  # the client went away (hung up or was killed): nothing more to send
                    server.hangups += 1
                self.close_connection = True

            def _stream(self, req: dict, chunk: dict, how: str, reply: str, usage: dict, send: Any, finish: str) -> None:
                words = reply.split(" ")
                model = req["model"].rsplit("/", 1)[-1]
                deltas = server.chunks.get(model) or [w + " " for w in words[:-1]] + words[-1:]
                if how == "long":  # fifty words a piece, or long answers take long to stream
                    deltas = ["".join(deltas[k:k + 50]) for k in range(0, len(deltas), 50)]
                for i, w in enumerate(deltas):
                    if how == "slow" and i:
                        time.sleep(server.word_delay_s)
                    if server.word_interval_s:
                        time.sleep(server.word_interval_s)
                    send({**chunk, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
                    if how == "garbage" and i == 1:
                        send(b"{this is not json")
                    if server.piece_delay_s:
                        time.sleep(server.piece_delay_s)
                    if how in ("break", "truncate") and i == 1:
                        if how == "break":
                            self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                send({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
                if (req.get("stream_options") or {}).get("include_usage") and how != "nousage":
                    send({**chunk, "choices": [], "usage": usage})
                send(b"[DONE]")
                if server.chunked:
                    self.wfile.write(b"0\r\n\r\n")

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up on a stalled or broken answer is what the test wanted

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def api_base(self) -> str:
        return self.url + "/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["body"] is not None]

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def openai_server():
    with FakeOpenAIServer() as server:
        yield server


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="serve paced answers on 127.0.0.1 until killed")
    ap.add_argument("--words", type=int, default=200, help="words (chunks, tokens) per answer")
    ap.add_argument("--rate", type=float, default=80.0, help="words per second (0: all at once)")
    a = ap.parse_args()
    srv = FakeOpenAIServer()
    srv.answer_words, srv.word_interval_s = a.words, (1 / a.rate if a.rate > 0 else 0.0)
    srv.chunked = True
    print(srv.api_base, flush=True)
    srv.httpd.serve_forever(poll_interval=0.05)
