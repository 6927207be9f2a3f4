"""Rendering a BenchResult: plain-text tables, a terminal plot of the cost/quality curves, and JSON."""

from __future__ import annotations

import math
from typing import Any, Sequence

from skillchat.bench import frontier
from skillchat.bench.runner import BenchResult, Point, ratings_to_reach

TIMING_KEY = "timings"  # the only part of the JSON that differs between two runs with one seed


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
    check = [c for c in frontier_check(res, router) if c["delta"] is not None]
    if not check:
        return "no full-info baseline point within the router's cost range"
    wins = sum(c["delta"] >= -tolerance for c in check)
    worst = min(check, key=lambda c: c["delta"])
    return (
        f"on or above (within {tolerance:g}) {wins} of {len(check)} full-info baseline points it can reach; worst: "
        f"{worst['baseline']} lambda={worst['lambda']:g} {worst['score']:.3f} vs router {worst['router_score_at_cost']:.3f} "
        f"at {worst['cost_share']:.1%} cost"
    )


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
        "dataset": res.dataset,
        "models": res.models,
        "n_train": res.n_train,
        "n_test": res.n_test,
        "ratings_used": res.ratings_used,
        "seed": o.seed,
        "skills": o.skills,
        "train_lambda": o.train_lambda,
        "policy": {"train": "thompson", "test": "greedy"},
        "handbook": {
            "modes": len(hb.modes),
            "skills": len(hb.skills),
            "skill_names": [f"{s.id}: {s.name}" for s in hb.skills.values()],
            "settings": {
                "prior_strength": hb.settings.prior_strength,
                "mode_strength": hb.settings.mode_strength,
                "skill_strength": hb.settings.skill_strength,
                "exploration_floor": hb.settings.exploration_floor,
            },
            "inferrer": {
                "max_skills": o.inferrer.max_skills,
                "min_share": o.inferrer.min_share,
                "threshold": o.inferrer.threshold,
                "similarity_weight": o.inferrer.similarity_weight,
            },
        },
        "best_single": {"model": res.best_single[0], "score": res.best_single[1].score, "cost": res.best_single[1].cost},
        "router": [point(p) for p in res.router],
        "router_per_lambda": None if res.router_per_lambda is None else [point(p) for p in res.router_per_lambda],
        "relearn": res.relearn_note,
        "router_relearn": None if res.router_relearn is None else [point(p) for p in res.router_relearn],
        "baselines": [{**b, "cost_share": _share(b["cost"], ref)} for b in res.baselines],
        "learning_curve_lambda": o.curve_lambda,
        "learning_curve": [{"ratings": n, "score": r.score, "cost": r.cost, "cost_share": _share(r.cost, ref)} for n, r in res.learning_curve],
        "ratings_to_95pct": ratings_to_reach(res.learning_curve, 0.95),
        "frontier_check": frontier_check(res),
        "frontier_check_per_lambda": None if res.router_per_lambda is None else frontier_check(res, res.router_per_lambda),
        TIMING_KEY: {k: round(v, 3) for k, v in res.timings.items()},
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]))
        return "  " + "  ".join(out).rstrip()

    return [fmt(headers), "  " + "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def render(res: BenchResult, *, plot: bool = True, width: int = 72, height: int = 20) -> str:
    ref = res.best_single[1].cost
    o = res.options
    hb = res.handbook
    lines = [
        f"skillchat bench: {res.dataset}: {len(res.models)} models, {res.n_train} train / {res.n_test} test queries, seed {o.seed}",
        f"handbook: {len(hb.modes)} modes, {len(hb.skills)} skills ({o.skills}); every model starts from the same prior",
        f"training: {res.ratings_used} bandit ratings (one model's score revealed per train query), "
        f"Thompson sampling at lambda={o.train_lambda:g}",
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
        row = [f"{p.lam:g}", f"{r.score:.3f}", _usd_k(r.cost), _pct(_share(r.cost, ref)), f"{r.top_model} ({r.top_share:.0%})", f"{p.seconds:.2f}s"]
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
        rows = [[str(n), f"{r.score:.3f}", _usd_k(r.cost), _pct(_share(r.cost, ref))] for n, r in res.learning_curve]
        lines += _table(["ratings", "score", "$/1k q", "cost vs best"], rows, "rrrr")
        n95 = ratings_to_reach(res.learning_curve, 0.95)
        lines.append(f"  95% of the final score reached after {n95} ratings" if n95 is not None else "")

    if plot:
        lines += ["", *plot_frontiers(res, width=width, height=height)]
    t = res.timings
    lines += [
        "",
        "time: " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}s" for k, v in t.items() if k != "total") + f"; total {t['total']:.1f}s",
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
    h = frontier.hull(p for p in _points(res.router, ref) if p[0] > 0)
    for (c0, s0), (c1, s1) in zip(h, h[1:]):
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
        *(["M routers learned at each lambda"] if res.router_per_lambda else []),
        *(["L router with periodic relearn"] if res.router_relearn else []),
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
