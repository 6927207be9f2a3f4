"""How soon after `skillchat` is launched can the user type?

Runs the real entry point (`python -m skillchat --demo`) in a real terminal (tmux, 100x30), with a
fresh SKILLCHAT_HOME each run (so the database is created and migrated, as on a first start),
polling the screen every 10 ms. For each run it records, from the moment tmux starts the process:

* prompt:  the prompt box (its placeholder) is on screen;
* typed:   a key sent as soon as the prompt showed is visible in it (the app is interactive);
* models:  the status line says "models ready" (litellm, ~4 s to import, loaded in a thread).

and prints the median of the runs (and min / max). Needs tmux.

Usage:  python benchmarks/bench_ui_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT = "Message, or / for commands"
TYPED = "zqx"


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True).stdout


def one_run(i: int) -> dict[str, float]:
    sock = f"skillchat-bench-{os.getpid()}-{i}"
    home = tempfile.mkdtemp(prefix="skillchat-bench-")
    env = (f"env -i PATH={os.environ.get('PATH', '')!r} TERM=xterm-256color HOME={home!r} SKILLCHAT_HOME={home!r} "
           f"PYTHONPATH={str(REPO)!r} LITELLM_LOCAL_MODEL_COST_MAP=True")
    cmd = f"cd {home!r} && {env} {sys.executable} -m skillchat --demo"
    t0 = time.perf_counter()
    tmux(sock, "new-session", "-d", "-s", "b", "-x", "100", "-y", "30", cmd)
    out: dict[str, float] = {}
    try:
        deadline = t0 + 60
        while time.perf_counter() < deadline:
            screen = tmux(sock, "capture-pane", "-p", "-t", "b")
            now = time.perf_counter() - t0
            if "prompt" not in out and PROMPT in screen:
                out["prompt"] = now
                tmux(sock, "send-keys", "-t", "b", "-l", TYPED)
            if "prompt" in out and "typed" not in out and f"│ {TYPED}" in screen:
                out["typed"] = now
            if "models" not in out and "models ready" in screen:
                out["models"] = now
            if len(out) == 3:
                break
            time.sleep(0.01)
    finally:
        tmux(sock, "kill-server")
        shutil.rmtree(home, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed to run the app in a real terminal")
    one_run(-1)  # warm the OS file cache and .pyc files; not counted
    runs = [one_run(i) for i in range(args.runs)]
    print(f"skillchat --demo in tmux 100x30, fresh SKILLCHAT_HOME, {args.runs} runs (median, min-max):")
    for key, label in (("prompt", "prompt on screen"), ("typed", "first keys visible in the prompt"),
                       ("models", "models ready (litellm loaded)")):
        xs = [r[key] for r in runs if key in r]
        if len(xs) < len(runs):
            print(f"  {label}: missing in {len(runs) - len(xs)} runs")
        if xs:
            print(f"  {label:34s} {statistics.median(xs):5.2f} s   ({min(xs):.2f}-{max(xs):.2f})")


if __name__ == "__main__":
    main()
