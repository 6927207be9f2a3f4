"""The replay benchmark: learn a router from bandit ratings on the train split, score it on the test split.

Training is a chat user rating answers: the train queries are replayed in a seeded random order;
for each one the core Router (Thompson policy, at the training lambda) picks ONE model, the
`Environment` reveals that model's score (the rating) and cost, and the handbook is updated exactly
as the app does it (`apply_rating`, `record_cost`). Nothing else about the outcomes is ever looked
at by the router. Every rating is also logged as a `RatedTurn`, the record relearn consumes.

Testing routes the test split greedily (no learning) at several lambdas. Baselines get the full
train matrix and say so in their names. Hyper-parameters are defaults, chosen on validation
carved out of train splits (see `holdout` and benchmarks/bench_tune.py), never on a test split.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skillchat.bench import baselines
from skillchat.bench.data import Environment, FullInformation, Outcome, Query, ReplaySet, Result, TestScorer
from skillchat.bench.progress import Progress
from skillchat.bench.skills import FALLBACK_SKILL, SkillOptions, agent_ids, build_handbook, label_skills
from skillchat.config import DEFAULT_LAMBDA
from skillchat.core import compare as compare_core
from skillchat.core.handbook import Handbook
from skillchat.core.inference import ActiveSkill, SkillProfile
from skillchat.core.learning import RatedTurn, apply_rating
from skillchat.core.ports import Message
from skillchat.routing import build_router

# Up to 10: costs are normalised by the dearest model's, so when the best model is far cheaper
# than the dearest, only a large lambda reaches the cheap end of the range. Dense from 0.02 to 1
# (steps of about a quarter): the learned router's frontier moves in steps (at one lambda most task
# types pass from the dearest model to a cheap one), and a coarse sweep steps over its best points.
DEFAULT_LAMBDAS = (0.0, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15, 0.17, 0.2, 0.25, 0.3, 0.35, 0.4,
                   0.5, 0.6, 0.7, 0.85, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class BenchOptions:
    seed: int = 0
    skills: str = "learned"
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    # The replayed user keeps the app's default cost weight while teaching.
    train_lambda: float = DEFAULT_LAMBDA
    curve_lambda: float = DEFAULT_LAMBDA
    knn_k: int = 50
    skill: SkillOptions = field(default_factory=SkillOptions)
    relearn: bool = True
    relearn_every: int | None = None  # None: n_train / 8, at least 100
    # Also learn one router per lambda, each from its own replay at that lambda (a user who keeps
    # one budget setting), next to the main router learned at train_lambda and swept at test.
    per_lambda: bool = True
    curve_start: int = 50  # learning curve after curve_start, 1.41x, 2x ... ratings; 0: no curve
    baselines: bool = True
    # Share of train turns on which the simulated user compares two answers side by side (core/compare.py):
    # both outcomes are revealed, the preference becomes two ratings, and the user pays for both.
    compare_share: float = 0.0
    # How the simulated user explores while teaching: "thompson" (explore on, the app's default) or
    # "gentle" (/explore gentle: at most 1 turn in 4 away from the best expected agent).
    train_policy: str = "thompson"


@dataclass
class Point:
    lam: float
    result: Result
    seconds: float = 0.0


@dataclass
class BenchResult:
    dataset: str
    models: list[str]
    n_train: int
    n_test: int
    ratings_used: int
    options: BenchOptions
    handbook: Handbook
    best_single: tuple[str, Result]
    router: list[Point]
    baselines: list[dict[str, Any]]
    learning_curve: list[tuple[int, Result]]
    relearn_note: str
    router_relearn: list[Point] | None
    router_per_lambda: list[Point] | None
    singles: list[tuple[str, Result]]
    random: Result
    oracle: Result
    knn: list[Point]
    per_category: list[Point]
    timings: dict[str, float]
    # What the user saw while teaching: the mean score and cost of the answers they rated during
    # training (Thompson, at the training lambda), and the best single model on the same queries.
    experienced: Result | None = None
    best_single_on_train: Result | None = None
    inferrer: str = ""
    ratings_log: list[RatedTurn] = field(repr=False, default_factory=list)
    compared_turns: int = 0  # train turns answered side by side (--compare-share)
    ratings_at: dict[int, int] = field(default_factory=dict)  # learning-curve checkpoint (turns) -> ratings given


def prompt_tokens(text: str) -> int:
    return (len(text) + 3) // 4 + 6


class Learner:
    """A handbook, its Router, and the skill profile of every text (inference reads text only)."""

    def __init__(
        self, hb: Handbook, *, profiles_from: Learner | None = None, labels: dict[str, str] | None = None
    ) -> None:
        self._profiles: dict[str, SkillProfile] = {}
        self.labels = labels  # category -> skill: each query is read as its label (--skills labels)
        self.use(hb)
        if profiles_from is not None and profiles_from._structure == self._structure:
            self._profiles = profiles_from._profiles  # same skills, same inference: same profiles

    def use(self, hb: Handbook) -> None:
        structure = [(s.id, s.mode, s.signature, s.indicators, s.examples) for s in hb.skills.values()]
        if getattr(self, "_structure", None) != structure:
            self._profiles.clear()
            self._structure = structure
        self.hb = hb
        self.router = build_router(hb)  # the app's router: same inferrer, same settings

    def profile(self, q: Query) -> SkillProfile:
        p = self._profiles.get(q.qid)
        if p is None:
            if self.labels is not None:  # a category the train split never had reads as the fallback
                sid = self.labels.get(q.category, FALLBACK_SKILL)
                p = SkillProfile(self.hb.skills[sid].mode, (ActiveSkill(sid, 1.0),))
            else:
                p = self.router.inferrer.infer([Message("user", q.text)])
            self._profiles[q.qid] = p
        return p

    def route_greedy(self, queries: Sequence[Query], lambdas: Sequence[float]) -> dict[float, list[str]]:
        """Agent ids chosen greedily for each query at each lambda; the handbook is not changed."""
        out: dict[float, list[str]] = {lam: [] for lam in lambdas}
        for q in queries:
            prof = self.profile(q)
            pt = prompt_tokens(q.text)
            for lam in lambdas:
                out[lam].append(self.router.decide(prof, pt, lam=lam, policy="greedy").chosen)
        return out


def holdout(rs: ReplaySet, fraction: float = 0.25, seed: int = 0) -> ReplaySet:
    """A validation copy: a seeded `fraction` of the TRAIN queries become 'test', the real test split is dropped."""
    return rs.holdout(fraction, seed)


def _checkpoints(n: int, start: int) -> list[int]:
    """start, then x1.41 at a time (50, 71, 100, 141, 200, ...), and n: doubling would report a
    curve that reaches its mark after 210 ratings as 400."""
    pts: list[int] = []
    k = 0
    while (x := round(start * 2 ** (k / 2))) < n:
        if not pts or x > pts[-1]:
            pts.append(x)
        k += 1
    pts.append(n)
    return pts


def learn(hb: Handbook, agent: str, mode: str, weights: Mapping[str, float], out: Outcome, rating: float) -> None:
    """One rated answer into the handbook: its rating on the turn's skills and what it cost."""
    apply_rating(hb, agent, weights, rating)
    hb.record_cost(agent, mode, out.prompt_tokens or 0, out.completion_tokens or 0, out.cost_usd)


def train(
    learner: Learner,
    env: Environment,
    order: Sequence[Query],
    model_of: dict[str, str],
    *,
    lam: float,
    rng: random.Random,
    log: list[RatedTurn],
    checkpoint: Callable[[int], None] | None = None,
    checkpoints: Sequence[int] = (),
    relearn_fn: Callable[[list[RatedTurn]], Handbook] | None = None,
    relearn_every: int = 0,
    progress: Progress | None = None,
    compare_share: float = 0.0,
    compare_rng: random.Random | None = None,
    seen: list[tuple[str, float, float]] | None = None,
    policy: str = "thompson",
) -> int:
    """Replay `order` as rated chat turns: route (`policy`, Thompson sampling or its gentle form),
    reveal one outcome, learn from it.

    On a `compare_share` of the turns (drawn with `compare_rng`, so the other turns replay as
    without comparisons) the user compares instead: the pair core/compare.py picks answers, both
    outcomes are revealed, and the preference between them becomes two ratings. `seen` gets, per
    turn, the model of the answer the user went on with, its score, and what the turn cost.
    Returns the number of compared turns.
    """
    marks = set(checkpoints)
    compared = 0
    for i, q in enumerate(order):
        hb = learner.hb
        d = learner.router.decide(learner.profile(q), prompt_tokens(q.text), lam=lam, policy=policy, rng=rng)
        weights = d.skill_weights()
        pair = None
        if compare_share > 0 and (compare_rng or rng).random() < compare_share:
            pair = compare_core.pick_pair(d, compare_rng or rng)
        if pair is None:
            answers = [(d.chosen, env.reveal(q.qid, model_of[d.chosen]), d.probability, d.policy)]
            ratings = [answers[0][1].score]
            kept = 0
        else:
            compared += 1
            answers = [(a, env.reveal(q.qid, model_of[a]), pair.called[a], compare_core.POLICY) for a in pair.agents]
            outcome = compare_core.preference(answers[0][1].score, answers[1][1].score)
            ratings = list(compare_core.outcome_ratings(outcome))
            kept = 1 if compare_core.continues_right(outcome) else 0
        for k, ((agent, out, propensity, logged_policy), rating) in enumerate(zip(answers, ratings, strict=True)):
            learn(hb, agent, d.mode, weights, out, rating)
            log.append(
                RatedTurn(
                    turn_id=f"bench-{i + 1}" + (f"-{k}" if pair else ""),
                    agent_id=agent,
                    mode=d.mode,
                    skills=weights,
                    score=rating,
                    propensity=propensity,
                    policy=logged_policy,
                    text=q.text,
                    cost_usd=out.cost_usd,
                    prompt_tokens=out.prompt_tokens,
                    completion_tokens=out.completion_tokens,
                    rating_id=len(log) + 1,
                    probabilities=dict(pair.called) if pair else {a.agent_id: a.probability for a in d.ranking},
                    pair=f"bench-{i + 1}" if pair else "",
                )
            )
        if seen is not None:
            seen.append((model_of[answers[kept][0]], answers[kept][1].score, sum(a[1].cost_usd for a in answers)))
        n = i + 1
        if relearn_fn is not None and relearn_every and n % relearn_every == 0 and n < len(order):
            learner.use(relearn_fn(log))
        if checkpoint is not None and n in marks:
            checkpoint(n)
        if progress is not None:
            progress.advance()
    return compared


@dataclass
class Taught:
    learner: Learner
    log: list[RatedTurn]  # the rated turns, one per query of `order` once taught (no side-by-side comparisons)
    order: list[Query]  # the train queries in the order they were replayed
    model_of: dict[str, str]  # agent id -> model


def untaught(rs: ReplaySet, seed: int) -> Taught:
    """What `run` starts from with the default options: the handbook of skills learned from the
    train texts, no rating yet, and the train queries in the order `run` replays them."""
    opts = BenchOptions(seed=seed)
    model_of = {a: m for m, a in agent_ids(rs.models).items()}
    hb, _ = build_handbook(rs.name, rs.models, [q.text for q in rs.train], source="learned", seed=seed,
                           opts=opts.skill, train_ids=[q.qid for q in rs.train])
    order = list(rs.train)
    random.Random(f"order:{seed}").shuffle(order)
    return Taught(Learner(hb), [], order, model_of)


def taught(rs: ReplaySet, seed: int) -> Taught:
    """The learner as `run` teaches it with the default options (skills learned from the train
    texts, the same replay order and draws), for the diagnostics in benchmarks/ that look inside a
    taught router. `run` also takes a learning curve along the way, which changes nothing it learns."""
    t = untaught(rs, seed)
    train(t.learner, Environment(rs), t.order, t.model_of, lam=BenchOptions().train_lambda, rng=random.Random(f"policy:{seed}"),
          log=t.log)
    return t


def reference_routes(
    rs: ReplaySet, knn_k: int, lambdas: Sequence[float], progress: Progress | None = None
) -> tuple[dict[float, list[str]], dict[float, list[str]]]:
    """The per-category and kNN routings of the test split. They depend on the set alone, not on
    the seed, so they are computed once per set and kept on it: a run of several seeds computes
    them in the parent before its workers fork, and no seed pays for them again."""
    cache: dict[Any, Any] = rs.__dict__.setdefault("_reference_cache", {})
    key = (knn_k, tuple(lambdas))
    if key not in cache:
        full = FullInformation(rs)
        cat = baselines.per_category(full, rs.test, lambdas)
        if progress is not None:
            progress.phase(f"kNN baseline (k={knn_k})", max(1, len(rs.test) // 50))
        knn = baselines.KNN(full, knn_k, progress=progress.advance if progress else None).route(rs.test, lambdas)
        cache[key] = (cat, knn)
    return cache[key]


def _experienced(seen: Sequence[tuple[str, float, float]]) -> Result | None:
    """What the user saw while teaching, per turn: the answer they went on with, and what the turn
    cost (both answers of a compared turn)."""
    if not seen:
        return None
    counts: dict[str, int] = {}
    for model, _, _ in seen:
        counts[model] = counts.get(model, 0) + 1
    top = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    n = len(seen)
    return Result(sum(s for _, s, _ in seen) / n, sum(c for _, _, c in seen) / n, top[1] / n, top[0],
                  dict(sorted(counts.items())))


def _relearn_module() -> tuple[Any, str]:
    import importlib

    try:
        mod = importlib.import_module("skillchat.core.relearn")  # another issue's work; optional here
    except ImportError as e:
        return None, f"relearn: not available ({e})"
    if not hasattr(mod, "relearn"):
        return None, "relearn: not available (skillchat.core.relearn has no relearn())"
    return mod, ""


def run(rs: ReplaySet, opts: BenchOptions = BenchOptions(), progress: Progress | None = None) -> BenchResult:
    progress = progress or Progress(enabled=False)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    train_q, test_q = rs.train, rs.test
    ids = agent_ids(rs.models)
    model_of = {a: m for m, a in ids.items()}
    lambdas = tuple(sorted(set(opts.lambdas)))

    # 1. A fresh handbook: skills from the train texts only.
    t = time.perf_counter()
    progress.phase("discovering skills", 1)
    labels = label_skills([q.category for q in train_q]) if opts.skills == "labels" else None
    hb, _ = build_handbook(
        rs.name, rs.models, [q.text for q in train_q], source=opts.skills, seed=opts.seed, opts=opts.skill,
        train_ids=[q.qid for q in train_q], labels=labels,
    )
    base = hb.structure_copy()
    learner = Learner(hb, labels=labels)
    progress.advance()
    timings["skills"] = time.perf_counter() - t

    # 2. Training by bandit ratings, with the learning curve measured along the way.
    scorer = TestScorer(rs)
    env = Environment(rs)
    order = list(train_q)
    random.Random(f"order:{opts.seed}").shuffle(order)
    curve: list[tuple[int, Result]] = []
    curve_time = 0.0

    log: list[RatedTurn] = []
    ratings_at: dict[int, int] = {}

    def checkpoint(n: int) -> None:
        nonlocal curve_time
        tc = time.perf_counter()
        choices = learner.route_greedy(test_q, [opts.curve_lambda])[opts.curve_lambda]
        curve.append((n, scorer.score([model_of[a] for a in choices])))
        ratings_at[n] = len(log)
        curve_time += time.perf_counter() - tc

    t = time.perf_counter()
    seen: list[tuple[str, float, float]] = []
    progress.phase("learning from ratings", len(order))
    compared = train(
        learner, env, order, model_of, lam=opts.train_lambda, rng=random.Random(f"policy:{opts.seed}"), log=log,
        checkpoint=checkpoint, checkpoints=_checkpoints(len(order), opts.curve_start) if opts.curve_start else (),
        progress=progress, compare_share=opts.compare_share, compare_rng=random.Random(f"compare:{opts.seed}"),
        seen=seen, policy=opts.train_policy,
    )
    timings["training"] = time.perf_counter() - t - curve_time
    timings["learning_curve"] = curve_time
    ratings_used = env.calls
    experienced = _experienced(seen)

    # 3. The learned router on the test split, greedy, at every lambda.
    t = time.perf_counter()
    progress.phase("routing the test split", 1)
    choices = learner.route_greedy(test_q, lambdas)
    elapsed = time.perf_counter() - t
    router = [Point(lam, scorer.score([model_of[a] for a in choices[lam]]), elapsed / len(lambdas)) for lam in lambdas]
    progress.advance()
    timings["router_test"] = elapsed

    per_lambda: list[Point] | None = None
    if opts.per_lambda:
        t = time.perf_counter()
        per_lambda = []
        progress.phase("one router per lambda", len(lambdas) * len(order))
        for lam in lambdas:
            other = Learner(base.copy(), profiles_from=learner, labels=labels)
            train(other, Environment(rs), order, model_of, lam=lam, rng=random.Random(f"policy:{opts.seed}"), log=[],
                  progress=progress, compare_share=opts.compare_share, compare_rng=random.Random(f"compare:{opts.seed}"),
                  policy=opts.train_policy)
            tl = time.perf_counter()
            picks = other.route_greedy(test_q, [lam])[lam]
            per_lambda.append(Point(lam, scorer.score([model_of[a] for a in picks]), time.perf_counter() - tl))
        timings["per_lambda"] = time.perf_counter() - t

    # 4. Baselines.
    full = FullInformation(rs)
    singles = [(m, scorer.single(m)) for m in rs.models]
    best = baselines.best_single(full)
    best_single = (best, scorer.single(best))
    best_train = full.means()[rs.models.index(best)]
    best_single_on_train = Result(best_train[0], best_train[1], 1.0, best, {best: len(train_q)})
    cheap = baselines.cheapest(full)
    rand = scorer.random_expectation()
    oracle = scorer.oracle()
    base_rows: list[dict[str, Any]] = []
    knn_pts: list[Point] = []
    cat_pts: list[Point] = []
    if opts.baselines:
        t = time.perf_counter()
        cat, knn = reference_routes(rs, opts.knn_k, lambdas, progress)
        cat_pts = [Point(lam, scorer.score(cat[lam])) for lam in lambdas]
        knn_pts = [Point(lam, scorer.score(knn[lam])) for lam in lambdas]
        timings["references"] = time.perf_counter() - t

    def row(name: str, r: Result, **extra: Any) -> dict[str, Any]:
        return {"name": name, "score": r.score, "cost": r.cost, "top_share": r.top_share, **extra}

    for m, r in singles:
        base_rows.append(row(f"single: {m}", r, kind="single", model=m))
    base_rows.append(row("random (expected)", rand, kind="random"))
    base_rows.append(row(f"cheapest on train: {cheap}", scorer.single(cheap), kind="cheapest", model=cheap))
    base_rows.append(row(f"best single on train: {best}", best_single[1], kind="best_single", model=best))
    for p in cat_pts:
        base_rows.append(row(f"per-category best (uses category labels, full info) lambda={p.lam:g}", p.result,
                             kind="per_category", **{"lambda": p.lam}))
    for p in knn_pts:
        base_rows.append(row(f"kNN tf-idf k={opts.knn_k} (full info) lambda={p.lam:g}", p.result, kind="knn",
                             **{"lambda": p.lam}))
    base_rows.append(row("oracle: cheapest correct model (full info on test)", oracle, kind="oracle"))

    # 5. Periodic relearn, when another issue's relearn is installed.
    if not opts.relearn:
        relearn_mod, note = None, "relearn: skipped (--no-relearn)"
    elif labels is not None:  # relearning rebuilds skills from the texts, which would drop the labels
        relearn_mod, note = None, "relearn: skipped (the category labels are the skills)"
    else:
        relearn_mod, note = _relearn_module()
    router_relearn: list[Point] | None = None
    if relearn_mod is not None:
        every = opts.relearn_every or max(100, len(order) // 8)
        t = time.perf_counter()
        try:
            router_relearn = _run_relearn(
                relearn_mod, base, rs, order, model_of, opts, every, test_q, lambdas, scorer, progress
            )
            note = f"relearn: periodic, every {every} ratings (skillchat.core.relearn)"
        except Exception as e:  # another issue's work in progress must not sink the benchmark
            note = f"relearn: failed ({type(e).__name__}: {e})"
            router_relearn = None
        timings["relearn"] = time.perf_counter() - t
    progress.close()
    timings["total"] = time.perf_counter() - t_all
    return BenchResult(
        dataset=rs.name,
        models=list(rs.models),
        n_train=len(train_q),
        n_test=len(test_q),
        ratings_used=ratings_used,
        options=opts,
        handbook=learner.hb,
        best_single=best_single,
        router=router,
        baselines=base_rows,
        learning_curve=curve,
        relearn_note=note,
        router_relearn=router_relearn,
        router_per_lambda=per_lambda,
        singles=singles,
        random=rand,
        oracle=oracle,
        knn=knn_pts,
        per_category=cat_pts,
        timings=timings,
        experienced=experienced,
        best_single_on_train=best_single_on_train,
        inferrer=type(learner.router.inferrer).__name__,
        ratings_log=log,
        compared_turns=compared,
        ratings_at=ratings_at,
    )


def _run_relearn(
    mod: Any,
    base: Handbook,
    rs: ReplaySet,
    order: Sequence[Query],
    model_of: dict[str, str],
    opts: BenchOptions,
    every: int,
    test_q: Sequence[Query],
    lambdas: Sequence[float],
    scorer: TestScorer,
    progress: Progress,
) -> list[Point]:
    """The same replay (same order and seed), rebuilding the handbook from the log every `every` ratings."""
    learner = Learner(base.copy())
    env = Environment(rs)

    def relearn_fn(turns: list[RatedTurn]) -> Handbook:
        return mod.relearn(base, list(turns)).handbook

    progress.phase("learning with periodic relearn", len(order))
    train(
        learner, env, order, model_of, lam=opts.train_lambda, rng=random.Random(f"policy:{opts.seed}"), log=[],
        relearn_fn=relearn_fn, relearn_every=every, progress=progress, compare_share=opts.compare_share,
        compare_rng=random.Random(f"compare:{opts.seed}"), policy=opts.train_policy,
    )
    t = time.perf_counter()
    choices = learner.route_greedy(test_q, lambdas)
    elapsed = time.perf_counter() - t
    return [Point(lam, scorer.score([model_of[a] for a in choices[lam]]), elapsed / len(lambdas)) for lam in lambdas]


def ratings_to_reach(curve: Sequence[tuple[int, Result]], share: float = 0.95) -> int | None:
    """The first checkpoint whose test score reaches `share` of the final one."""
    if not curve:
        return None
    final = curve[-1][1].score
    for n, r in curve:
        if r.score >= share * final - 1e-12:
            return n
    return None

