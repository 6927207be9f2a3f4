"""`skillchat bench DIR`: learn a router from bandit ratings on a replay set and score it on its test split."""

from __future__ import annotations

import argparse
import math
from typing import Any


def _floats(text: str) -> tuple[float, ...]:
    """Comma-separated cost weights, each checked like every other lambda (finite, 0 to 10)."""
    from skillchat.config import lambda_arg

    vals = tuple(lambda_arg(x) for x in text.split(",") if x.strip())
    if not vals:
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated numbers, got {text!r}")
    return vals


def _lam(text: str) -> float:
    vals = _floats(text)
    if len(vals) != 1:
        raise argparse.ArgumentTypeError(f"expected one number, got {text!r}")
    return vals[0]


def _whole(lo: int, hi: int):  # type: ignore[no-untyped-def]
    from skillchat.config import whole_arg  # imported here: `skillchat --help` stays fast

    return whole_arg(lo, hi)


def _share(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not 0.0 <= x <= 1.0:  # also nan
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}")
    return x


def _seed(text: str) -> int:
    from skillchat.config import whole_arg
    from skillchat.errors import INT64_MAX

    return whole_arg(-INT64_MAX - 1, INT64_MAX)(text)


# A bench run per seed: past these, a count can only be a typo (and would not finish this year).
MAX_SEEDS = 10_000
MAX_JOBS = 1024
MAX_COUNT = 1_000_000  # modes, texts per skill, neighbours


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Replay a folder of precomputed model outcomes (queries.csv + outcomes.csv): learn skills from the "
        "train texts, learn a router from one revealed rating per train query, then route the test split "
        "at several cost weights and compare with single models, kNN and per-category routers. --seeds N repeats it "
        "over N seeds (means with 95% intervals); --shuffle-test runs it with the texts shuffled, where the router "
        "must not beat the best single model."
    )
    p.add_argument("dir", metavar="DIR", help="a replay-set folder (queries.csv, outcomes.csv)")
    p.add_argument("--models", metavar="A,B,C", help="use only these models of the set")
    p.add_argument("--skills", choices=("learned", "handbook", "both", "labels"), default="learned",
                   help="skills learned from the train texts (default), the shipped general handbook's, both, or "
                        "the category labels (a diagnostic: each query read as its label, which chat turns do not have)")
    p.add_argument("--seed", type=_seed, default=0, help="seed for skill discovery, replay order and exploration (default 0)")
    p.add_argument("--seeds", type=_whole(1, MAX_SEEDS), default=1, metavar="N",
                   help="run seeds S..S+N-1 (S = --seed) and report each figure as a mean with a 95%% t-interval (default 1)")
    p.add_argument("--jobs", type=_whole(1, MAX_JOBS), metavar="J",
                   help="worker processes for several seeds (default: the number of seeds, at most the CPU count); "
                   "the results do not depend on it")
    p.add_argument("--shuffle-test", action="store_true",
                   help="honesty check: permute the texts among the queries of each split (outcomes stay), so the text "
                   "says nothing about outcomes; the router must then not beat the best single model")
    p.add_argument("--lambdas", type=_floats, metavar="X,Y,...", help="cost weights to sweep on the test split")
    p.add_argument("--train-lambda", type=_lam, metavar="X", help="cost weight while learning from ratings")
    p.add_argument("--curve-lambda", type=_lam, metavar="X", help="cost weight of the learning curve")
    p.add_argument("--modes", type=_whole(1, MAX_COUNT), metavar="N",
                   help="number of discovered task types (default: from the set's size)")
    p.add_argument("--texts-per-skill", type=_whole(1, MAX_COUNT), metavar="N",
                   help="about how many train texts make one discovered skill")
    p.add_argument("--knn", type=_whole(1, MAX_COUNT), default=50, metavar="K",
                   help="neighbours of the kNN baseline (default 50)")
    p.add_argument("--no-relearn", action="store_true", help="skip the periodic-relearn variant")
    p.add_argument("--no-per-lambda", action="store_true",
                   help="skip the routers learned separately at each lambda (faster)")
    p.add_argument("--compare-share", type=_share, default=0.0, metavar="X",
                   help="a user who compares two answers side by side (as /compare in the app) on this share of the "
                   "train turns, 0 to 1: both outcomes are revealed and the preference becomes two ratings; "
                   "reports the learning speed and what the user paid (default 0)")
    p.add_argument("--explore", choices=("on", "gentle"), default="on",
                   help="how the simulated user explores while teaching, as /explore in the app: on (Thompson "
                   "sampling, the default) or gentle (at most 1 turn in 4 away from the best expected model)")
    p.add_argument("--no-plot", action="store_true", help="omit the terminal plot")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.add_argument("--json", metavar="FILE",
                   help="also write the results as JSON to FILE ('-' for stdout, instead of the tables)")
    p.add_argument("--save-handbook", metavar="FILE",
                   help="write the learned handbook (skills and evidence) to FILE (with several seeds: the first seed's)")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys
    import time
    from pathlib import Path

    from skillchat.bench import data, report, runner
    from skillchat.bench import seeds as seeds_mod
    from skillchat.bench.progress import Progress
    from skillchat.config import EXPLORE_WORDS, explore_policy

    rs = data.load(args.dir)
    for target in (args.json, args.save_handbook):
        if target and target != "-":
            _check_target(Path(target))  # before the run, not after minutes of it
    if args.models:
        rs = rs.restrict([m.strip() for m in args.models.split(",") if m.strip()])
    opts = runner.BenchOptions(
        seed=args.seed, skills=args.skills, knn_k=args.knn, relearn=not args.no_relearn, per_lambda=not args.no_per_lambda,
        compare_share=args.compare_share, train_policy=explore_policy(EXPLORE_WORDS[args.explore]),
    )
    changes: dict[str, Any] = {}
    if args.lambdas:
        changes["lambdas"] = args.lambdas
    if args.train_lambda is not None:
        changes["train_lambda"] = args.train_lambda
    if args.curve_lambda is not None:
        changes["curve_lambda"] = args.curve_lambda
    skill_changes: dict[str, Any] = {}
    if args.modes is not None:
        skill_changes["n_modes"] = args.modes
    if args.texts_per_skill is not None:
        skill_changes["texts_per_skill"] = args.texts_per_skill
    if skill_changes:
        changes["skill"] = dataclasses.replace(opts.skill, **skill_changes)
    opts = dataclasses.replace(opts, **changes)

    seeds = list(range(args.seed, args.seed + args.seeds))
    jobs = seeds_mod.default_jobs(len(seeds)) if args.jobs is None else min(args.jobs, len(seeds))
    progress = Progress(sys.stderr, enabled=not args.quiet)

    def done(run: seeds_mod.SeedRun, elapsed: float) -> None:
        if not args.quiet and len(seeds) > 1:
            print(f"bench: seed {run.seed} done ({len(finished) + 1} of {len(seeds)}, {elapsed:.1f}s)",
                  file=sys.stderr, flush=True)
        finished.append(run.seed)

    finished: list[int] = []
    if not args.quiet and len(seeds) > 1:
        print(f"bench: {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}) in {jobs} process(es)"
              + ("; progress per seed when each is done" if jobs > 1 else ""), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        runs = seeds_mod.run_seeds(
            rs, opts, seeds, jobs=jobs, shuffle=args.shuffle_test, progress=progress if jobs == 1 else None, on_done=done
        )
    finally:
        progress.close()
    if len(runs) == 1:
        run = runs[0]
        doc = {**run.doc, "seeds": seeds, "per_seed": [run.doc], "intervals": None, report.TIMING_KEY: run.timings}
    else:
        doc = seeds_mod.combine(runs, time.perf_counter() - t0, jobs)
    notes: list[str] = []
    if args.shuffle_test:
        doc["shuffle_test"] = report.shuffle_verdict(doc)
        notes.append(doc["shuffle_test"]["verdict"])
        doc[report.TIMING_KEY] = doc.pop(report.TIMING_KEY)  # timings stay the last key
    if args.json == "-":
        print(json.dumps(doc, indent=1))
    else:
        if len(runs) == 1:
            print(report.render(runs[0].result, plot=not args.no_plot, notes=notes))
        else:
            print(report.render_seeds(doc, plot=not args.no_plot))
        if args.json:
            _write(Path(args.json), json.dumps(doc, indent=1) + "\n")
    if args.save_handbook:
        _write(Path(args.save_handbook), json.dumps(runs[0].handbook, indent=1, ensure_ascii=False) + "\n")
    return 0


def _check_target(path):  # type: ignore[no-untyped-def]
    from skillchat.errors import SkillchatError
    from skillchat.text_safety import os_reason, shown

    try:
        folder = path.parent
        if folder.exists() and not folder.is_dir():
            raise SkillchatError(f"{shown(path, 200)}: cannot write it ({shown(folder, 200)} is not a folder)")
        folder.mkdir(parents=True, exist_ok=True)  # as the write will
        if path.is_dir():
            raise SkillchatError(f"{shown(path, 200)}: cannot write it (it is a folder)")
    except OSError as e:
        raise SkillchatError(f"{shown(path, 200)}: cannot write it ({os_reason(e)})") from None


def _write(path, text):  # type: ignore[no-untyped-def]
    from skillchat import atomic
    from skillchat.errors import SkillchatError
    from skillchat.text_safety import os_reason, shown

    try:
        atomic.write_text(path, text)
    except OSError as e:
        raise SkillchatError(f"{shown(path, 200)}: cannot write it ({os_reason(e)})") from None
