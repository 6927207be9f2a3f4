"""Rendering a BenchResult: plain-text tables, a terminal plot of the cost/quality curves, and JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from skillchat.bench import frontier
from skillchat.bench.runner import BenchResult, Point, ratings_to_reach

TIMING_KEY = "timings"  # the only part of the JSON that differs between two runs with one seed


_TRAIN_POLICY = {"thompson": "Thompson sampling",
                 "gentle": "gentle Thompson sampling (at most 1 turn in 4 away from the best expected model)"}


# How each skill source reads in a report: "labels" must not pass for a router a user could have.
_SOURCE = {
    "learned": "learned from the train texts",
    "handbook": "the shipped general handbook's",
    "both": "learned and shipped",
    "labels": "the category labels, read from each query: a diagnostic, chat turns carry none",
}


def _usd_k(cost: float) -> str:
    """Mean cost per query, shown per 1,000 queries."""
    return f"${cost * 1000:,.3f}"


def _share(cost: float, ref: float) -> float:
    return cost / ref if ref > 0 else float("nan")


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1%}"


def _points(ps: Sequence[Point], ref: float) -> list[tuple[float, float]]:
    return [(_share(p.result.cost, ref), p.result.score) for p in ps]


def frontier_check(res: BenchResult, router: Sequence[Point] | None = None) -> list[dict[str, Any]]:
    """A router's frontier at the cost of every full-information baseline point it can reach."""
    ref = res.best_single[1].cost
    pts = _points(res.router if router is None else router, ref)
    out = []
    for kind, ps in (("per-category", res.per_category), ("kNN", res.knn)):
        for p in ps:
            share = _share(p.result.cost, ref)
            at = frontier.score_at(pts, share)
            out.append(
                {
                    "baseline": kind,
                    "lambda": p.lam,
                    "cost_share": share,
                    "score": p.result.score,
                    "router_score_at_cost": at,
                    "delta": None if at is None else at - p.result.score,
                }
            )
    return out


def frontier_summary(res: BenchResult, router: Sequence[Point] | None = None, tolerance: float = 0.005) -> str:
    return doc_frontier_summary(frontier_check(res, router), tolerance)


# Costs (shares of the best single model's test cost) at which the summary compares the router
# with the full-information references: the targets for routerbench and mmlupro.
SUMMARY_COSTS = (0.3, 0.5)


def summary(res: BenchResult) -> dict[str, Any]:
    """The figures the router is judged by, every cost a share of the best single model's test cost.

    `router_at_100pct` reads the router's frontier (upper hull of its lambda sweep) at 100%: its
    best score at or below the best single model's cost. The references at 30% / 50% are read off
    their own frontiers the same way, so all three are compared at one cost. `experienced` is what
    the user saw while teaching (the rated train turns), next to the best single model on the same
    train queries.
    """
    best_name, best = res.best_single
    ref = best.cost
    pts = _points(res.router, ref)
    at100 = frontier.score_at(pts, 1.0)

    def at(points: Sequence[Point], c: float) -> float | None:
        return frontier.score_at(_points(points, ref), c) if points else None

    exp, bt = res.experienced, res.best_single_on_train
    return {
        "best_single": {"model": best_name, "score": best.score, "cost": best.cost},
        "router_at_100pct": at100,
        "gain_at_100pct": None if at100 is None else at100 - best.score,
        "cheapest_cost_share": min((c for c, _ in pts), default=None),
        # Where no model costs 10% of the best one, no router can get there: the summary says so.
        "cheapest_single_share": min((_share(r.cost, ref) for _, r in res.singles or ()), default=None),
        "score_at_cost": [
            {"cost_share": c, "router": at(res.router, c), "knn": at(res.knn, c), "per_category": at(res.per_category, c)}
            for c in SUMMARY_COSTS
        ],
        "experienced": None if exp is None else {
            "score": exp.score,
            "cost": exp.cost,
            "cost_share": None if bt is None else _share(exp.cost, bt.cost),
        },
        "best_single_on_train": None if bt is None else {"model": bt.top_model, "score": bt.score, "cost": bt.cost},
        "experienced_gain": None if exp is None or bt is None else exp.score - bt.score,
        **_learning_speed(res),
    }


def _learning_speed(res: BenchResult) -> dict[str, Any]:
    """Train turns, and ratings given in them, until the learning curve reaches 95% of its final score
    (they differ when the user compares: a compared turn gives two ratings)."""
    turns = ratings_to_reach(res.learning_curve, 0.95)
    return {
        "ratings_to_95pct": None if turns is None else res.ratings_at.get(turns, turns),
        "turns_to_95pct": turns,
        "compare_share": res.options.compare_share,
        "compared_turns": res.compared_turns,
    }


def to_json(res: BenchResult) -> dict[str, Any]:
    ref = res.best_single[1].cost

    def point(p: Point) -> dict[str, Any]:
        r = p.result
        return {
            "lambda": p.lam,
            "score": r.score,
            "cost": r.cost,
            "cost_share": _share(r.cost, ref),
            "top_share": r.top_share,
            "top_model": r.top_model,
            "counts": dict(r.counts),
        }

    o = res.options
    hb = res.handbook
    return {
        "summary": summary(res),
        "dataset": res.dataset,
        "models": res.models,
        "n_train": res.n_train,
        "n_test": res.n_test,
        "ratings_used": res.ratings_used,
        "seed": o.seed,
        "skills": o.skills,
        "train_lambda": o.train_lambda,
        "policy": {"train": o.train_policy, "test": "greedy"},
        "handbook": {
            "modes": len(hb.modes),
            "skills": len(hb.skills),
            "skill_names": [f"{s.id}: {s.name}" for s in hb.skills.values()],
            "settings": {
                "prior_strength": hb.settings.prior_strength,
                "mode_strength": hb.settings.mode_strength,
                "skill_strength": hb.settings.skill_strength,
                "exploration_floor": hb.settings.exploration_floor,
                "quality_floor": hb.settings.quality_floor,
                "challenge_z": hb.settings.challenge_z,
            },
            "inferrer": res.inferrer,
        },
        "best_single": {"model": res.best_single[0], "score": res.best_single[1].score, "cost": res.best_single[1].cost},
        "router": [point(p) for p in res.router],
        "router_per_lambda": None if res.router_per_lambda is None else [point(p) for p in res.router_per_lambda],
        "relearn": res.relearn_note,
        "router_relearn": None if res.router_relearn is None else [point(p) for p in res.router_relearn],
        "baselines": [{**b, "cost_share": _share(b["cost"], ref)} for b in res.baselines],
        "learning_curve_lambda": o.curve_lambda,
        "learning_curve": [{"turns": n, "ratings": res.ratings_at.get(n, n), "score": r.score, "cost": r.cost,
                            "cost_share": _share(r.cost, ref)} for n, r in res.learning_curve],
        **_learning_speed(res),
        "frontier_check": frontier_check(res),
        "frontier_check_per_lambda": None if res.router_per_lambda is None else frontier_check(res, res.router_per_lambda),
        TIMING_KEY: {k: round(v, 3) for k, v in res.timings.items()},
    }


def _with_iv(v: float | None, iv: Any, fmt: str, of: int = 1) -> str:
    """A number with its 95% half-width when it comes from several seeds ('-' for None).

    A figure that is the same in every seed (the baselines, the best single model) is shown bare:
    "± 0.000" would only hide the figures that do move."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    text = _num(v, fmt)
    if iv is not None and of > 1 and (iv.half_width > 0 or iv.n < of):
        text += " ± " + format(iv.half_width, fmt.lstrip("+"))
        if iv.n < of:
            text += f" ({iv.n} of {of} seeds)"
    return text


def render_summary(doc: dict[str, Any], intervals: dict[str, Any] | None = None) -> list[str]:
    """The compact block at the top of the report, from a JSON document's `summary` (one seed or
    the mean of several, then with `intervals`)."""
    from skillchat.bench.seeds import lookup

    sm = doc["summary"]
    per_seed = doc.get("per_seed") or []
    of = len(per_seed) if intervals else 1

    def f(v: Any, fmt: str, *path: str | int) -> str:
        return _with_iv(v, lookup(intervals, "summary", *path) if intervals else None, fmt, of)

    b = sm["best_single"]
    lines = [
        "Summary (test split; costs as shares of the best single model's test cost"
        + (f"; mean ± 95% interval over {of} seeds)" if of > 1 else ")"),
        f"  best single model: {b['model']}: {f(b['score'], '.3f', 'best_single', 'score')} "
        f"at {_usd_k(b['cost'])} per 1k queries (= 100% cost)",
        f"  router, best at <= 100% cost: {f(sm['router_at_100pct'], '.3f', 'router_at_100pct')} "
        f"(vs best single: {f(sm['gain_at_100pct'], '+.3f', 'gain_at_100pct')})",
    ]
    cheap = sm["cheapest_cost_share"]
    if per_seed:
        reach = sum(1 for d in per_seed if (d["summary"]["cheapest_cost_share"] or math.inf) <= 0.1 + 1e-12)
        note = f"<= 10% in {reach} of {len(per_seed)} seed(s)"
    else:
        note = "reaches <= 10%" if cheap is not None and cheap <= 0.1 + 1e-12 else "does not reach 10%"
    floor = sm.get("cheapest_single_share")
    if floor is not None and floor > 0.1 + 1e-12:
        note += f"; the cheapest model costs {floor:.1%}"
    lines.append(f"  router, cheapest point: {f(cheap, '.1%', 'cheapest_cost_share')} of the cost ({note})")
    for i, row in enumerate(sm["score_at_cost"]):
        lines.append(
            f"  at {row['cost_share']:.0%} cost: router {f(row['router'], '.3f', 'score_at_cost', i, 'router')}, "
            f"kNN (full info) {f(row['knn'], '.3f', 'score_at_cost', i, 'knn')}, "
            f"per-category (labels, full info) {f(row['per_category'], '.3f', 'score_at_cost', i, 'per_category')}"
        )
    exp, bt = sm["experienced"], sm["best_single_on_train"]
    if exp is None:
        lines.append("  while teaching (the answers rated on the train split): -")
    else:
        lines.append(
            f"  while teaching (the answers rated on the train split): score {f(exp['score'], '.3f', 'experienced', 'score')} "
            f"at {f(exp['cost_share'], '.1%', 'experienced', 'cost_share')} of the best single model's cost"
        )
    if bt is None:
        lines.append("  best single model on the same train queries: -")
    else:
        lines.append(
            f"  best single model on the same train queries ({bt['model']}): "
            f"{f(bt['score'], '.3f', 'best_single_on_train', 'score')}; "
            f"teaching vs it: {f(sm['experienced_gain'], '+.3f', 'experienced_gain')}"
        )
    lines.append(f"  ratings to 95% of the final score: {f(sm['ratings_to_95pct'], '.0f', 'ratings_to_95pct')}")
    if sm.get("compare_share"):
        lines.append(
            f"  side by side on {sm['compare_share']:.0%} of the train turns ({f(sm['compared_turns'], '.0f', 'compared_turns')} "
            f"turns, two ratings each): {f(sm['turns_to_95pct'], '.0f', 'turns_to_95pct')} turns to 95% of the final score; "
            "the teaching cost above counts both answers")
    return lines


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]))
        return "  " + "  ".join(out).rstrip()

    return [fmt(headers), "  " + "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def render(res: BenchResult, *, plot: bool = True, width: int = 72, height: int = 20, notes: Sequence[str] = ()) -> str:
    """The text report of one seed; `notes` are lines shown under the summary (e.g. the shuffle verdict)."""
    ref = res.best_single[1].cost
    o = res.options
    hb = res.handbook
    lines = [
        f"skillchat bench: {res.dataset}: {len(res.models)} models, {res.n_train} train / {res.n_test} test queries, "
        f"seed {o.seed}",
        "",
        *render_summary({"summary": summary(res)}),
        *notes,
        "",
        f"handbook: {len(hb.modes)} modes, {len(hb.skills)} skills ({_SOURCE.get(o.skills, o.skills)}); "
        "every model starts from the same prior",
        f"training: {res.ratings_used} bandit ratings (one model's score revealed per train query), "
        f"{_TRAIN_POLICY[o.train_policy]} at lambda={o.train_lambda:g}",
        f"best single model on train: {res.best_single[0]}: test score {res.best_single[1].score:.3f} "
        f"at {_usd_k(ref)} per 1k queries (= 100% cost)",
        "",
        "Learned router on the test split (greedy, no learning on test)",
    ]
    relearn = {p.lam: p for p in res.router_relearn} if res.router_relearn else {}
    matched = {p.lam: p for p in res.router_per_lambda} if res.router_per_lambda else {}
    headers = ["lambda", "score", "$/1k q", "cost vs best", "most used model (share)", "time"]
    align = "lrrrlr"
    if relearn:
        headers += ["w/ relearn", "cost"]
        align += "rr"
    if matched:
        headers += ["learned at this lambda", "cost", "most used"]
        align += "rrl"
    rows = []
    for p in res.router:
        r = p.result
        row = [f"{p.lam:g}", f"{r.score:.3f}", _usd_k(r.cost), _pct(_share(r.cost, ref)), f"{r.top_model} ({r.top_share:.0%})",
               f"{p.seconds:.2f}s"]
        if relearn:
            q = relearn[p.lam].result
            row += [f"{q.score:.3f}", _pct(_share(q.cost, ref))]
        if matched:
            q = matched[p.lam].result
            row += [f"{q.score:.3f}", _pct(_share(q.cost, ref)), f"{q.top_share:.0%}"]
        rows.append(row)
    lines += _table(headers, rows, align)
    lines.append(
        f"  score/cost: one router learned at lambda={o.train_lambda:g}, routing at each lambda; "
        + (res.relearn_note if not relearn else "w/ relearn: the same replay " + res.relearn_note.removeprefix("relearn: "))
    )
    if matched:
        lines.append("  learned at this lambda: a separate replay of the train split per lambda (a user who keeps that setting)")
    lines += ["", "Baselines on the test split (same split; '(full info)' = sees every model's train outcomes)"]
    rows = [[b["name"], f"{b['score']:.3f}", _usd_k(b["cost"]), _pct(_share(b["cost"], ref))] for b in res.baselines]
    lines += _table(["baseline", "score", "$/1k q", "cost vs best"], rows, "lrrr")

    if res.knn or res.per_category:
        lines += ["", "Frontier check (the router's cost/quality frontier read at each full-info baseline point's cost)"]
        lines.append(f"  router learned at lambda={o.train_lambda:g}: " + frontier_summary(res))
        if res.router_per_lambda:
            lines.append("  routers learned at each lambda: " + frontier_summary(res, res.router_per_lambda))

    if res.learning_curve:
        lines += ["", f"Learning curve (test split, greedy at lambda={o.curve_lambda:g})"]
        rows = [[str(n), str(res.ratings_at.get(n, n)), f"{r.score:.3f}", _usd_k(r.cost), _pct(_share(r.cost, ref))]
                for n, r in res.learning_curve]
        lines += _table(["turns", "ratings", "score", "$/1k q", "cost vs best"], rows, "rrrrr")
        n95 = ratings_to_reach(res.learning_curve, 0.95)
        lines.append(f"  95% of the final score reached after {n95} turns ({res.ratings_at.get(n95, n95)} ratings)"
                     if n95 is not None else "")

    if plot:
        lines += ["", *plot_frontiers(res, width=width, height=height)]
    t = res.timings
    lines += [
        "",
        "time: " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}s" for k, v in t.items() if k != "total")
        + f"; total {t['total']:.1f}s",
    ]
    return "\n".join(lines)


def plot_frontiers(res: BenchResult, *, width: int = 72, height: int = 20) -> list[str]:
    """A text scatter plot: score against cost (share of the best single model's, log scale)."""
    ref = res.best_single[1].cost
    series: list[tuple[str, list[tuple[float, float]]]] = [
        ("o", [(_share(r.cost, ref), r.score) for _, r in res.singles]),
        ("B", [(1.0, res.best_single[1].score)]),
        ("C", _points(res.per_category, ref)),
        ("K", _points(res.knn, ref)),
    ]
    if res.router_relearn:
        series.append(("L", _points(res.router_relearn, ref)))
    if res.router_per_lambda:
        series.append(("M", _points(res.router_per_lambda, ref)))
    series.append(("R", _points(res.router, ref)))
    return _plot(series, width=width, height=height)


def _plot(series: list[tuple[str, list[tuple[float, float]]]], *, width: int, height: int) -> list[str]:
    """The plot of (cost share, score) series; 'o' are single models, 'R' the router, drawn last."""
    marks = {mark for mark, ps in series if ps}
    pts = [p for _, ps in series for p in ps if p[0] > 0]
    if not pts:
        return []
    # The score axis spans the routers and the best single model; weak single models below that
    # range are left out (and counted) so that the curves that matter get the rows.
    focus = [p for mark, ps in series if mark != "o" for p in ps if p[0] > 0]
    xs = [math.log10(c) for c, _ in pts]
    ys = [s for _, s in focus]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    y0 -= max(y1 - y0, 0.02) * 0.5
    hidden = sum(1 for c, s in series[0][1] if c > 0 and s < y0)
    if x1 - x0 < 1e-9:
        x0, x1 = x0 - 1, x1 + 1
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.05, y1 + 0.05
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    grid = [[" "] * width for _ in range(height)]

    def cell(c: float, s: float) -> tuple[int, int]:
        col = round((math.log10(c) - x0) / (x1 - x0) * (width - 1))
        row = round((y1 - s) / (y1 - y0) * (height - 1))
        return min(max(row, 0), height - 1), min(max(col, 0), width - 1)

    # The router's frontier as a dotted line (mixing two policies reaches any point between them).
    h = frontier.hull(p for mark, ps in series if mark == "R" for p in ps if p[0] > 0)
    for (c0, s0), (c1, s1) in pairwise(h):
        for k in range(1, 40):
            f = k / 40
            lc = math.log10(c0) + (math.log10(c1) - math.log10(c0)) * f
            c = 10**lc
            s = s0 + (s1 - s0) * (c - c0) / (c1 - c0)
            r, col = cell(c, s)
            if grid[r][col] == " ":
                grid[r][col] = "."
    for mark, ps in series:  # later series draw over earlier ones: the router on top
        for c, s in ps:
            if c > 0 and s >= y0:
                r, col = cell(c, s)
                grid[r][col] = mark
    out = ["Score vs cost (x: cost as a share of the best single model's, log scale)"]
    for i, row in enumerate(grid):
        label = f"{y1 - (y1 - y0) * i / (height - 1):.3f}" if i in (0, height // 2, height - 1) else ""
        out.append(f"{label:>6} |" + "".join(row))
    out.append("       +" + "-" * width)
    ticks = [" "] * (width + 8)
    for v in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
        lv = math.log10(v)
        if x0 - 1e-9 <= lv <= x1 + 1e-9:
            col = 8 + round((lv - x0) / (x1 - x0) * (width - 1))
            label = f"{v:.0%}"
            start = min(max(col - len(label) // 2, 8), len(ticks) - len(label))
            if all(ch == " " for ch in ticks[max(start - 1, 0) : start + len(label) + 1]):
                ticks[start : start + len(label)] = list(label)
    out.append("".join(ticks).rstrip())
    legend = [
        "R learned router (lambda sweep; dots: its frontier)",
        *(["M routers learned at each lambda"] if "M" in marks else []),
        *(["L router with periodic relearn"] if "L" in marks else []),
        "K kNN (full info)",
        "C per-category (labels, full info)",
        "B best single model",
        "o other single models" + (f" ({hidden} below the plot)" if hidden else ""),
    ]
    line = " "
    for item in legend:
        if len(line) + len(item) + 2 > width + 8:
            out.append(line.rstrip())
            line = " "
        line += " " + item + " "
    out.append(line.rstrip())
    return out


# --- the shuffled-outcomes honesty check ------------------------------------------------------


def shuffle_verdict(doc: dict[str, Any]) -> dict[str, Any]:
    """Judge a bench run on a shuffled set (texts permuted among queries, outcomes kept).

    The text then carries no information about outcomes, so the router can at best find the
    models that are good on average: its best score at <= 100% of the best single model's cost
    must not beat that model by more than noise. Noise is the larger of the seeds' 95% half-width
    of the gain and two standard errors of a test-split mean (scores in [0, 1] have a variance of
    at most p(1-p)); a router that clears it is reading the outcomes through something else.
    """
    from skillchat.bench.seeds import lookup

    sm = doc["summary"]
    best = sm["best_single"]["score"]
    at, gain = sm["router_at_100pct"], sm["gain_at_100pct"]
    iv = lookup(doc.get("intervals") or {}, "summary", "gain_at_100pct")
    noise = 2 * math.sqrt(max(best * (1 - best), 0.0) / max(doc["n_test"], 1))
    tolerance = max(noise, iv.half_width if iv else 0.0, 0.005)
    passed = gain is None or gain <= tolerance
    seeds = doc.get("seeds") or [doc.get("seed")]
    where = f" (mean of {len(seeds)} seeds)" if len(seeds) > 1 else ""
    if at is None:
        figures = f"router has no point at or below the best single model's cost; best single {best:.3f}"
    else:
        figures = f"router best at <=100% cost {at:.3f} vs best single {best:.3f}{where}: {gain:+.3f}, tolerance {tolerance:.3f}"
    verdict = (
        f"shuffle test (texts permuted among queries, outcomes kept): {figures}: no gain, as expected"
        if passed
        else f"WARNING: shuffle test (texts permuted among queries, outcomes kept): {figures}: the router still "
        "beats the best single model, so it gains from something other than what the text says"
    )
    return {
        "router_at_100pct": at,
        "best_single": best,
        "gain_at_100pct": gain,
        "tolerance": tolerance,
        "passed": passed,
        "verdict": verdict,
    }


# --- several seeds ------------------------------------------------------------------------------


def _doc_points(rows: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(r["cost_share"], r["score"]) for r in rows if r.get("cost_share") is not None and r.get("score") is not None]


def doc_frontier_summary(check: Sequence[dict[str, Any]], tolerance: float = 0.005) -> str:
    """`frontier_summary` read off a JSON frontier check (e.g. the mean over seeds of each delta)."""
    check = [c for c in check if c["delta"] is not None]
    if not check:
        return "no full-info baseline point within the router's cost range"
    wins = sum(c["delta"] >= -tolerance for c in check)
    worst = min(check, key=lambda c: c["delta"])
    return (
        f"on or above (within {tolerance:g}) {wins} of {len(check)} full-info baseline points it can reach; worst: "
        f"{worst['baseline']} lambda={worst['lambda']:g} {worst['score']:.3f} vs router {worst['router_score_at_cost']:.3f} "
        f"at {worst['cost_share']:.1%} cost"
    )


def render_seeds(doc: dict[str, Any], *, plot: bool = True, width: int = 72, height: int = 20) -> str:
    """The text report of several seeds, from their combined JSON (see seeds.combine): the same
    sections as one seed's, every figure a mean with its 95% half-width over the seeds."""
    from skillchat.bench.seeds import lookup

    ivs = doc.get("intervals") or {}
    seeds = doc["seeds"]
    of = len(seeds)

    def f(v: Any, fmt: str, *path: str | int) -> str:
        return _with_iv(v, lookup(ivs, *path), fmt, of)

    hb = doc["handbook"]
    best = doc["best_single"]
    consecutive = seeds == list(range(seeds[0], seeds[0] + of))
    span = f"seeds {seeds[0]}..{seeds[-1]}" if consecutive else "seeds " + ",".join(map(str, seeds))
    lines = [
        f"skillchat bench: {doc['dataset']}: {len(doc['models'])} models, {doc['n_train']} train / {doc['n_test']} test queries, "
        f"{span} ({of} runs; mean ± 95% t-interval half-width over seeds)",
        "",
        *render_summary(doc, ivs),
        *([doc["shuffle_test"]["verdict"]] if doc.get("shuffle_test") else []),
        "",
        f"handbook: {f(hb['modes'], '.3g', 'handbook', 'modes')} modes, {f(hb['skills'], '.3g', 'handbook', 'skills')} skills "
        f"({_SOURCE.get(doc['skills'], doc['skills'])}), built per seed; every model starts from the same prior",
        f"training: {doc['ratings_used']:g} bandit ratings per seed, {_TRAIN_POLICY[doc['policy']['train']]} "
        f"at lambda={doc['train_lambda']:g}",
        f"best single model on train: {best['model']}: test score {best['score']:.3f} "
        f"at {_usd_k(best['cost'])} per 1k queries (= 100% cost)",
        "",
        "Learned router on the test split (greedy, no learning on test; mean over seeds)",
    ]
    relearn, matched = doc.get("router_relearn"), doc.get("router_per_lambda")
    headers = ["lambda", "score", "cost vs best", "most used model (mean share)"]
    align = "lrrl"
    if relearn:
        headers += ["w/ relearn", "cost"]
        align += "rr"
    if matched:
        headers += ["learned at this lambda", "cost"]
        align += "rr"
    rows = []
    for i, p in enumerate(doc["router"]):
        row = [f"{p['lambda']:g}", f(p["score"], ".3f", "router", i, "score"),
               f(p["cost_share"], ".1%", "router", i, "cost_share"), f"{p['top_model']} ({p['top_share']:.0%})"]
        if relearn:
            q = relearn[i]
            row += [f(q["score"], ".3f", "router_relearn", i, "score"),
                    f(q["cost_share"], ".1%", "router_relearn", i, "cost_share")]
        if matched:
            q = matched[i]
            row += [f(q["score"], ".3f", "router_per_lambda", i, "score"),
                    f(q["cost_share"], ".1%", "router_per_lambda", i, "cost_share")]
        rows.append(row)
    lines += _table(headers, rows, align)
    lines.append(f"  one router per seed learned at lambda={doc['train_lambda']:g}, routing at each lambda; {doc['relearn']}")
    lines += ["", "Baselines on the test split ('(full info)' = sees every model's train outcomes; "
                  "they do not depend on the seed)"]
    rows = [[b["name"], f(b["score"], ".3f", "baselines", i, "score"), _usd_k(b["cost"]), _pct(b["cost_share"])]
            for i, b in enumerate(doc["baselines"])]
    lines += _table(["baseline", "score", "$/1k q", "cost vs best"], rows, "lrrr")
    if doc.get("frontier_check"):
        lines += ["", "Frontier check (mean over seeds of the router's frontier read at each full-info baseline point's cost)"]
        lines.append(f"  router learned at lambda={doc['train_lambda']:g}: " + doc_frontier_summary(doc["frontier_check"]))
        if doc.get("frontier_check_per_lambda"):
            lines.append("  routers learned at each lambda: " + doc_frontier_summary(doc["frontier_check_per_lambda"]))
    if doc.get("learning_curve"):
        lines += ["", f"Learning curve (test split, greedy at lambda={doc['learning_curve_lambda']:g}; mean over seeds)"]
        rows = [[f"{c.get('turns', c['ratings']):g}", f"{c['ratings']:g}", f(c["score"], ".3f", "learning_curve", i, "score"),
                 f(c["cost_share"], ".1%", "learning_curve", i, "cost_share")]
                for i, c in enumerate(doc["learning_curve"])]
        lines += _table(["turns", "ratings", "score", "cost vs best"], rows, "rrrr")

    lines += ["", "Per seed (the figures of the summary)"]
    rows = []
    for d in doc["per_seed"]:
        sm = d["summary"]
        at = {r["cost_share"]: r["router"] for r in sm["score_at_cost"]}
        exp = sm["experienced"]
        rows.append([
            str(d["seed"]), _opt(sm["router_at_100pct"], ".3f"), _opt(sm["gain_at_100pct"], "+.3f"),
            _opt(sm["cheapest_cost_share"], ".1%"),
            *(_opt(at.get(c), ".3f") for c in SUMMARY_COSTS), _opt(None if exp is None else exp["score"], ".3f"),
            _opt(sm["ratings_to_95pct"], "d"),
        ])
    lines += _table(["seed", "at <=100%", "vs best", "cheapest", *(f"at {c:.0%}" for c in SUMMARY_COSTS), "teaching",
                     "ratings to 95%"], rows, "r" * (6 + len(SUMMARY_COSTS)))
    if plot:
        series: list[tuple[str, list[tuple[float, float]]]] = [
            ("o", _doc_points([b for b in doc["baselines"] if b.get("kind") == "single"])),
            ("B", [(1.0, best["score"])]),
            ("C", _doc_points([b for b in doc["baselines"] if b.get("kind") == "per_category"])),
            ("K", _doc_points([b for b in doc["baselines"] if b.get("kind") == "knn"])),
        ]
        if relearn:
            series.append(("L", _doc_points(relearn)))
        if matched:
            series.append(("M", _doc_points(matched)))
        series.append(("R", _doc_points(doc["router"])))
        lines += ["", "(means over seeds)", *_plot(series, width=width, height=height)]
    t = doc.get(TIMING_KEY) or {}
    if t:
        lines += ["", f"time: {t.get('wall_clock', 0):.1f}s wall clock with {t.get('jobs', 1)} job(s); "
                  f"one seed {t.get('total', 0):.1f}s on average"]
    return "\n".join(lines)


def _opt(v: Any, fmt: str) -> str:
    return "-" if v is None else _num(v, fmt)


def _num(v: float, fmt: str) -> str:
    """format(v, fmt), but never "-0.000": a figure that rounds to zero has no sign to show."""
    text = format(v, fmt)
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = ("+" if fmt.startswith("+") else "") + text[1:]
    return text
