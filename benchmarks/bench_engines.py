"""The two engines that install here, on the same model file and prompt: llama-cpp-python's server
(what skillchat runs) and llama-cpp-cffi (a prebuilt wheel, driven through its C API here, since its
own Python layer fetches the tokenizer from the Hugging Face hub, which offline it cannot).

For each: time to load (server start until it answers / model load in process), resident memory
after answering, and per run the time to first token and decode tokens/s of a 200-token answer,
as median and p99.

    .venv/bin/python benchmarks/bench_engines.py --runs 7 [--cffi-python /tmp/cffi-venv/bin/python]

llama-cpp-cffi needs its own venv (`pip install --no-deps llama-cpp-cffi==0.4.42 cffi attrs`): its
declared dependencies (transformers, huggingface-hub<0.29, protobuf<6) do not resolve beside litellm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "Write a long story about a dragon who learns to cook. Use many paragraphs."
MAX_TOKENS = 200


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(name: str, load_s: float, rss: float, runs: list[tuple[float, float]]) -> dict:
    ttft = [r[0] for r in runs]
    tps = [r[1] for r in runs]
    out = {"engine": name, "load_s": round(load_s, 2), "rss_mb": round(rss), "runs": len(runs),
           "ttft_median_s": round(statistics.median(ttft), 3), "ttft_p99_s": round(pct(ttft, 0.99), 3),
           "tok_s_median": round(statistics.median(tps), 1), "tok_s_p99_low": round(pct(tps, 0.01), 1)}
    print(f"{name:<18} load {out['load_s']:.2f} s  RSS {out['rss_mb']} MB  first token median "
          f"{out['ttft_median_s']:.3f} s (p99 {out['ttft_p99_s']:.3f})  decode median {out['tok_s_median']:.1f} tok/s "
          f"(slowest 1%: {out['tok_s_p99_low']:.1f})", flush=True)
    return out


def bench_server(runs: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.pop("SKILLCHAT_LOCAL_MODEL", None)
    import asyncio

    from skillchat.core.ports import Message
    from skillchat.providers import local_model
    from skillchat.providers.openai_compat import DirectCall

    server = local_model.LocalServer()
    t0 = time.monotonic()
    url = server.start()
    load = time.monotonic() - t0

    async def one() -> tuple[float, float]:
        call = DirectCall(url, local_model.MODEL, [Message("user", PROMPT)], None, 60, max_tokens=MAX_TOKENS)
        start = time.monotonic()
        await call.open()
        first = last = None
        n = 0  # the server streams one token a chunk (and sends no token counts)
        async for _ in call.deltas():
            last = time.monotonic()
            first = first or last
            n += 1
        await call.aclose()
        return first - start, (n - 1) / (last - first)

    try:
        results = [asyncio.run(one()) for _ in range(runs)]
        return summary("llama-cpp-python", load, rss_mb(server.pid), results)
    finally:
        server.stop()


def cffi_child(model: str, runs: int) -> None:
    """Runs under the llama-cpp-cffi venv: load the GGUF file and decode with its C API."""
    import importlib.util
    import types

    # The package's __init__ imports transformers and huggingface_hub; its CPU library needs neither.
    pkg = types.ModuleType("llama")
    pkg.__path__ = [os.path.dirname(importlib.util.find_spec("llama").origin)]
    sys.modules["llama"] = pkg
    from llama._llama_cpp_cpu import ffi, lib  # type: ignore[import-not-found]

    t0 = time.monotonic()
    lib.llama_backend_init()
    mparams = lib.llama_model_default_params()
    m = lib.llama_model_load_from_file(model.encode(), mparams)
    vocab = lib.llama_model_get_vocab(m)
    cparams = lib.llama_context_default_params()
    cparams.n_ctx = 2048
    cparams.n_threads = cparams.n_threads_batch = max(1, min(4, os.cpu_count() or 1))
    load = time.monotonic() - t0
    # SmolLM2's own chat template (ChatML), as the server applies it.
    text = f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n".encode()
    toks = ffi.new("llama_token[]", 4096)
    n = lib.llama_tokenize(vocab, text, len(text), toks, 4096, True, True)
    piece = ffi.new("char[]", 256)
    results = []
    for _ in range(runs):
        ctx = lib.llama_init_from_model(m, cparams)
        sampler = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_greedy())
        start = time.monotonic()
        batch = lib.llama_batch_get_one(toks, n)
        first = None
        one = ffi.new("llama_token[]", 1)
        for i in range(MAX_TOKENS):  # noqa: B007  (i, after the loop, is the number of tokens decoded)
            if lib.llama_decode(ctx, batch) != 0:
                break
            tok = lib.llama_sampler_sample(sampler, ctx, -1)
            lib.llama_token_to_piece(vocab, tok, piece, 256, 0, False)
            if first is None:
                first = time.monotonic()
            if lib.llama_vocab_is_eog(vocab, tok):
                break
            one[0] = tok
            batch = lib.llama_batch_get_one(one, 1)
        last = time.monotonic()
        results.append((first - start, i / (last - first)))
        lib.llama_sampler_free(sampler)
        lib.llama_free(ctx)
    print(json.dumps({"load": load, "rss": rss_mb(os.getpid()), "runs": results}))


def bench_cffi(python: str, runs: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from skillchat.providers import local_model

    model = str(local_model.model_file({}))
    out = subprocess.run([python, __file__, "--child-cffi", model, "--runs", str(runs)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"{'llama-cpp-cffi':<18} does not run here: {last}")
        return {"engine": "llama-cpp-cffi", "error": last}
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return summary("llama-cpp-cffi", doc["load"], doc["rss"], [tuple(r) for r in doc["runs"]])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--cffi-python", help="python of a venv with llama-cpp-cffi installed")
    p.add_argument("--child-cffi", metavar="MODEL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_cffi:
        cffi_child(args.child_cffi, args.runs)
        return
    print(f"{args.runs} answers of up to {MAX_TOKENS} tokens each, one at a time, on {os.cpu_count()} cores")
    bench_server(args.runs)
    if args.cffi_python:
        bench_cffi(args.cffi_python, args.runs)


if __name__ == "__main__":
    main()
