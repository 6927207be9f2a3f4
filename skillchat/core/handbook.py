"""The Skill Handbook: modes, skills, agents, priors, and the evidence learned from ratings.

Structure (modes, skills, agents, priors) is immutable once parsed. Evidence and cost statistics
are mutable tables owned by the handbook, because online learning updates them after every rating
and the replay benchmark does so thousands of times; aggregates per (agent, mode) and per agent
are kept up to date incrementally so that scoring never has to sum over all skills.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from skillchat.core import patterns
from skillchat.core.ports import Price
from skillchat.errors import INT64_MAX, HandbookError, number_problem

SCHEMA_VERSION = 1
# Bounds of the numbers a handbook holds. Counts of ratings and tokens past a billion can only be a
# mistake, and far larger ones (1e308) overflow the scoring; versions and rating ids are stored in
# SQLite, whose integers stop at 2**63 - 1. NaN and the infinities are refused everywhere.
MAX_COUNT = 1e9
MAX_TOKENS = 10**9
MAX_PER_MTOK = 1e6  # a price: a dollar a token
MAX_USD = 1e6  # the mean cost of one call
MAX_STRENGTH = 1e9  # a prior's weight, in ratings
# Lengths of its strings: an id, a name or a model string is a short label; a description, an
# example or an indicator phrase is a paragraph at most (the longest shipped one is 332 characters).
# Longer ones are a mistake or an attack, and a 50 MB description takes `handbook show` minutes.
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 10_000
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]*$")
_SLACK = 1e-9  # rounding in float counts: below this a clamp is not worth a reason


@dataclass(frozen=True, slots=True)
class Mode:
    id: str
    name: str
    description: str = ""
    completion_tokens: int = 400


@dataclass(frozen=True, slots=True)
class Skill:
    id: str
    mode: str
    name: str
    description: str = ""
    indicators: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    parent: str | None = None
    # A learned tf-idf signature (term -> weight), for skills discovered from text clusters.
    signature: Mapping[str, float] | None = None
    provenance: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Prior:
    mean: float
    source: str = ""
    modes: Mapping[str, float] = field(default_factory=dict)
    skills: Mapping[str, float] = field(default_factory=dict)

    def for_mode(self, mode: str) -> float:
        return self.modes.get(mode, self.mean)

    def for_skill(self, skill: str, mode: str) -> float:
        return self.skills.get(skill, self.modes.get(mode, self.mean))


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    model: str
    name: str
    context_window: int
    prior: Prior
    price: Price | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    fallback_skill: str = "chat.general"
    # Higher tiers are stickier: ratings in other modes say less about this mode than ratings on
    # sibling skills do, and those say less than the skill's own ratings.
    # A prior that knows nothing about the agents is worth few ratings; handbooks whose priors come
    # from public leaderboards say so with a strength of their own.
    prior_strength: float = 4.0
    mode_strength: float = 6.0
    skill_strength: float = 4.0
    exploration_floor: float = 0.03
    # Share of Thompson draws given to the agents most likely to be the most competent, price aside.
    quality_floor: float = 0.05
    # When not exploring, an agent takes the turn from the overall champion only if its score on
    # the turn's skills is higher by this many standard deviations of the difference.
    challenge_z: float = 1.0


@dataclass(slots=True)
class CostStat:
    n: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    usd: float = 0.0

    def add(self, prompt_tokens: float, completion_tokens: float, usd: float) -> None:
        self.n += 1
        k = 1.0 / self.n
        self.prompt_tokens += (prompt_tokens - self.prompt_tokens) * k
        self.completion_tokens += (completion_tokens - self.completion_tokens) * k
        self.usd += (usd - self.usd) * k


class Evidence:
    """Weighted success/failure counts per (agent, skill), with running aggregates.

    Counts are floats: a rating is spread over the active skills in proportion to their weights.
    """

    __slots__ = ("_cells", "_by_mode", "_by_agent", "_mode_of", "version", "clamped")

    def __init__(self, mode_of: Mapping[str, str]) -> None:
        self._mode_of = dict(mode_of)
        self.version = 0  # bumped on every change, so derived figures can be cached
        self._cells: dict[tuple[str, str], list[float]] = {}
        self._by_mode: dict[tuple[str, str], list[float]] = {}
        self._by_agent: dict[str, list[float]] = {}
        # Why a count was kept at zero instead of going below it (the latest few): a negative count
        # would make the posterior meaningless (and crash the math), so it is never stored.
        self.clamped: list[str] = []

    def add(self, agent: str, skill: str, successes: float, failures: float) -> None:
        """Add to one cell (negative amounts take a rating back). A count never goes below zero:
        taking back more than the cell holds (a rating it never had) stops at zero, and the
        reason is kept in `clamped`."""
        self.version += 1
        mode = self._mode_of[skill]
        cell = self._cells.get((agent, skill))
        have = (cell[0], cell[1]) if cell is not None else (0.0, 0.0)
        if have[0] + successes < 0 or have[1] + failures < 0:
            if have[0] + successes < -_SLACK or have[1] + failures < -_SLACK:
                self.clamped = self.clamped[-9:] + [
                    f"{agent} on {skill}: taking back {-min(successes, 0):.3g} successes and "
                    f"{-min(failures, 0):.3g} failures from {have[0]:.3g} and {have[1]:.3g} would go below zero; "
                    "kept at zero (a rating was taken back that this handbook never had)"]
            successes, failures = max(successes, -have[0]), max(failures, -have[1])
        for table, key in ((self._cells, (agent, skill)), (self._by_mode, (agent, mode)), (self._by_agent, agent)):
            c = table.get(key)
            if c is None:
                table[key] = [max(successes, 0.0), max(failures, 0.0)]
            else:  # sums of non-negative cells: only rounding could take them below zero
                c[0] = max(c[0] + successes, 0.0)
                c[1] = max(c[1] + failures, 0.0)

    def skill(self, agent: str, skill: str) -> tuple[float, float]:
        c = self._cells.get((agent, skill))
        return (c[0], c[1]) if c else (0.0, 0.0)

    def mode(self, agent: str, mode: str) -> tuple[float, float]:
        c = self._by_mode.get((agent, mode))
        return (c[0], c[1]) if c else (0.0, 0.0)

    def agent(self, agent: str) -> tuple[float, float]:
        c = self._by_agent.get(agent)
        return (c[0], c[1]) if c else (0.0, 0.0)

    def cells(self) -> Iterable[tuple[str, str, float, float]]:
        for (a, s), (succ, fail) in self._cells.items():
            yield a, s, succ, fail

    def total(self) -> float:
        return sum(s + f for s, f in self._by_agent.values())

    def scale(self, factor: float) -> None:
        """Discount all evidence, so that old ratings weigh less than new ones."""
        self.version += 1
        for table in (self._cells, self._by_mode, self._by_agent):
            for cell in table.values():
                cell[0] *= factor
                cell[1] *= factor

    def clear(self) -> None:
        self.version += 1
        self._cells.clear()
        self._by_mode.clear()
        self._by_agent.clear()


@dataclass
class Handbook:
    name: str
    version: int
    modes: dict[str, Mode]
    skills: dict[str, Skill]
    agents: dict[str, Agent]
    settings: Settings = field(default_factory=Settings)
    description: str = ""
    parent_version: int | None = None
    created: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    # Id of the last rating folded into this version's evidence by relearn; ratings after it are
    # applied online on top. None: no rating is in it yet.
    evidence_through: int | None = None
    evidence: Evidence = field(init=False)
    costs: dict[tuple[str, str], CostStat] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.evidence = Evidence({s.id: s.mode for s in self.skills.values()})
        self._pooled: dict[str, CostStat | None] = {}
        self._prior_logit_cache: dict[str, Any] = {}
        self._by_mode: dict[str, list[str]] = {}
        for s in self.skills.values():
            self._by_mode.setdefault(s.mode, []).append(s.id)

    # --- structure -------------------------------------------------------------------------
    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def skills_in_mode(self, mode: str) -> list[str]:
        return self._by_mode.get(mode, [])

    def fallback(self) -> Skill:
        return self.skills[self.settings.fallback_skill]

    # --- learning --------------------------------------------------------------------------
    def record_outcome(self, agent: str, skills: Mapping[str, float], score: float) -> None:
        """Spread one rating in [0, 1] over the active skills, in proportion to their weights."""
        total = sum(w for s, w in skills.items() if s in self.skills and w > 0)
        if agent not in self.agents or total <= 0:
            return
        for skill, w in skills.items():
            if skill in self.skills and w > 0:
                share = w / total
                self.evidence.add(agent, skill, share * score, share * (1.0 - score))

    def record_cost(self, agent: str, mode: str, prompt_tokens: float, completion_tokens: float, usd: float) -> None:
        self.costs.setdefault((agent, mode), CostStat()).add(prompt_tokens, completion_tokens, usd)
        self._pooled.pop(agent, None)

    def set_cost(self, agent: str, mode: str, stat: CostStat) -> None:
        self.costs[(agent, mode)] = stat
        self._pooled.pop(agent, None)

    def cost_stat(self, agent: str, mode: str) -> CostStat | None:
        return self.costs.get((agent, mode))

    def agent_cost(self, agent: str) -> CostStat | None:
        """All modes of one agent pooled: a fallback when a mode has no observations yet."""
        if agent not in self._pooled:
            stats = [self.costs[(agent, m)] for m in self.modes if (agent, m) in self.costs]
            stats = [c for c in stats if c.n > 0]
            n = sum(c.n for c in stats)
            self._pooled[agent] = (
                CostStat(
                    n=n,
                    prompt_tokens=sum(c.prompt_tokens * c.n for c in stats) / n,
                    completion_tokens=sum(c.completion_tokens * c.n for c in stats) / n,
                    usd=sum(c.usd * c.n for c in stats) / n,
                )
                if n > 0
                else None
            )
        return self._pooled[agent]

    def copy(self) -> "Handbook":
        return from_dict(to_dict(self), source=self.ref)

    def structure_copy(self, **changes: Any) -> "Handbook":
        """A handbook with the same structure and no evidence or cost statistics."""
        data = to_dict(self)
        data["competence"], data["costs"] = {}, {}
        data["metadata"].update(changes)
        return from_dict(data, source=self.ref)


# --- serialisation -------------------------------------------------------------------------


def to_dict(hb: Handbook) -> dict[str, Any]:
    competence: dict[str, dict[str, dict[str, float]]] = {}
    for agent, skill, succ, fail in sorted(hb.evidence.cells()):
        if succ or fail:
            competence.setdefault(agent, {})[skill] = {"successes": round(succ, 6), "failures": round(fail, 6)}
    costs: dict[str, dict[str, dict[str, float]]] = {}
    for (agent, mode), c in sorted(hb.costs.items()):
        costs.setdefault(agent, {})[mode] = {
            "n": round(c.n, 6),
            "prompt_tokens": round(c.prompt_tokens, 3),
            "completion_tokens": round(c.completion_tokens, 3),
            "usd": c.usd,
        }
    s = hb.settings
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata": {
            "name": hb.name,
            "version": hb.version,
            "parent_version": hb.parent_version,
            "created": hb.created,
            "description": hb.description,
            "history": copy.deepcopy(hb.history),
            "evidence_through": hb.evidence_through,
        },
        "settings": {
            "fallback_skill": s.fallback_skill,
            "prior_strength": s.prior_strength,
            "mode_strength": s.mode_strength,
            "skill_strength": s.skill_strength,
            "exploration_floor": s.exploration_floor,
            "quality_floor": s.quality_floor,
            "challenge_z": s.challenge_z,
        },
        "modes": [
            {"id": m.id, "name": m.name, "description": m.description, "completion_tokens": m.completion_tokens}
            for m in hb.modes.values()
        ],
        "skills": [_skill_dict(sk) for sk in hb.skills.values()],
        "agents": [_agent_dict(a) for a in hb.agents.values()],
        "competence": competence,
        "costs": costs,
    }


def _skill_dict(sk: Skill) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": sk.id,
        "mode": sk.mode,
        "name": sk.name,
        "description": sk.description,
        "indicators": list(sk.indicators),
        "examples": list(sk.examples),
        "parent": sk.parent,
    }
    if sk.signature is not None:
        d["signature"] = dict(sk.signature)
    if sk.provenance is not None:
        d["provenance"] = copy.deepcopy(dict(sk.provenance))
    return d


def _agent_dict(a: Agent) -> dict[str, Any]:
    return {
        "id": a.id,
        "model": a.model,
        "name": a.name,
        "context_window": a.context_window,
        "price": None
        if a.price is None
        else {"input_per_mtok": round(a.price.input * 1e6, 9), "output_per_mtok": round(a.price.output * 1e6, 9)},
        "prior": {
            "mean": a.prior.mean,
            "source": a.prior.source,
            "modes": dict(a.prior.modes),
            "skills": dict(a.prior.skills),
        },
    }


class _Reader:
    """Validates one document, naming the JSON path of the first problem found."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> HandbookError:
        # Both can quote the document (a key, a value): a message stays a line, however long those are.
        return HandbookError(self.source, _cut(path, 300), _cut(problem, 1000))

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        return value

    def arr(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def str_(self, d: dict[str, Any], key: str, path: str, *, required: bool = True, default: str = "",
             limit: int = MAX_TEXT_CHARS) -> str:
        if key not in d or d[key] is None:
            if required:
                raise self.fail(f"{path}.{key}", "is required")
            return default
        if not isinstance(d[key], str):
            raise self.fail(f"{path}.{key}", f"expected a string, got {_kind(d[key])}")
        return self.length(d[key], f"{path}.{key}", limit)

    def length(self, value: str, path: str, limit: int) -> str:
        if len(value) > limit:
            raise self.fail(path, f"is {len(value):,} characters long; at most {limit:,} are allowed")
        return value

    def num(self, value: Any, path: str, *, lo: float | None = None, hi: float | None = None, open_: bool = False) -> float:
        """A finite number within [lo, hi] ((lo, hi) with open_); the message says what is wrong."""
        problem = number_problem(value, lo=lo, hi=hi, lo_open=open_, hi_open=open_)
        if problem:
            raise self.fail(path, _in_json_words(problem, value))
        return float(value)

    def whole(self, value: Any, path: str, *, lo: int, hi: int, null: bool = False) -> int | None:
        """An integer within [lo, hi] (or null, when `null`)."""
        if value is None and null:
            return None
        problem = number_problem(value, lo=lo, hi=hi, whole=True)
        if problem:
            if null:
                problem = problem.replace(", got ", " or null, got ", 1)
            raise self.fail(path, _in_json_words(problem, value))
        return int(value)

    def strs(self, d: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
        items = self.arr(d.get(key, []), f"{path}.{key}")
        for i, it in enumerate(items):
            if not isinstance(it, str):
                raise self.fail(f"{path}.{key}[{i}]", f"expected a string, got {_kind(it)}")
            self.length(it, f"{path}.{key}[{i}]", MAX_TEXT_CHARS)
        return tuple(items)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit * 2 // 3]} […] {text[-(limit // 4):]}"


def _in_json_words(problem: str, value: Any) -> str:
    """A number problem that names a JSON value's kind the way the rest of this module does."""
    if isinstance(value, (dict, list, str, bool, type(None))):
        return problem.rsplit(", got ", 1)[0] + f", got {_kind(value)}"
    return problem


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__
    )


def from_dict(data: Any, source: str = "<handbook>") -> Handbook:
    """Parse and validate a handbook document; raises HandbookError naming source and JSON path."""
    r = _Reader(source)
    root = r.obj(data, "$")
    sv = root.get("schema_version")
    if sv != SCHEMA_VERSION:
        raise r.fail("$.schema_version", f"unsupported schema version {sv!r} (this skillchat reads {SCHEMA_VERSION})")

    meta = r.obj(root.get("metadata"), "$.metadata")
    name = r.str_(meta, "name", "$.metadata", limit=MAX_NAME_CHARS)
    if not _NAME_RE.match(name):
        raise r.fail("$.metadata.name", f"{name!r} is not a valid name (lowercase letters, digits, '-' and '_')")
    version = r.whole(meta.get("version"), "$.metadata.version", lo=1, hi=INT64_MAX)
    parent_version = r.whole(meta.get("parent_version"), "$.metadata.parent_version", lo=1, hi=INT64_MAX, null=True)
    history = r.arr(meta.get("history", []), "$.metadata.history")
    # A rating id: 0 means none is in it yet.
    through = r.whole(meta.get("evidence_through"), "$.metadata.evidence_through", lo=0, hi=INT64_MAX, null=True)

    modes: dict[str, Mode] = {}
    for i, m in enumerate(r.arr(root.get("modes"), "$.modes")):
        p = f"$.modes[{i}]"
        m = r.obj(m, p)
        mid = r.str_(m, "id", p, limit=MAX_NAME_CHARS)
        if not _NAME_RE.match(mid):
            raise r.fail(f"{p}.id", f"{mid!r} is not a valid mode id")
        if mid in modes:
            raise r.fail(f"{p}.id", f"duplicate mode id {mid!r}")
        ct = m.get("completion_tokens", 400)
        ct = int(r.num(ct, f"{p}.completion_tokens", lo=1, hi=MAX_TOKENS))
        modes[mid] = Mode(mid, r.str_(m, "name", p, required=False, default=mid, limit=MAX_NAME_CHARS),
                          r.str_(m, "description", p, required=False), ct)
    if not modes:
        raise r.fail("$.modes", "a handbook needs at least one mode")

    skills: dict[str, Skill] = {}
    for i, s in enumerate(r.arr(root.get("skills"), "$.skills")):
        p = f"$.skills[{i}]"
        s = r.obj(s, p)
        sid = r.str_(s, "id", p, limit=MAX_NAME_CHARS)
        if not _ID_RE.match(sid):
            raise r.fail(f"{p}.id", f"{sid!r} is not a valid skill id")
        if sid in skills:
            raise r.fail(f"{p}.id", f"duplicate skill id {sid!r}")
        mode = r.str_(s, "mode", p, limit=MAX_NAME_CHARS)
        if mode not in modes:
            raise r.fail(f"{p}.mode", f"unknown mode {mode!r}")
        indicators = r.strs(s, "indicators", p)
        for j, ind in enumerate(indicators):
            if ind.startswith("re:") and (problem := patterns.problem(ind[3:])):
                raise r.fail(f"{p}.indicators[{j}]", f"skill {sid!r}: pattern {_cut(ind[3:], 120)!r}: {problem}")
        signature = s.get("signature")
        if signature is not None:
            sig = r.obj(signature, f"{p}.signature")
            signature = {str(k): r.num(v, f"{p}.signature.{k}", lo=0, hi=MAX_COUNT) for k, v in sig.items()}
        provenance = s.get("provenance")
        if provenance is not None:
            provenance = r.obj(provenance, f"{p}.provenance")
        parent = s.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise r.fail(f"{p}.parent", f"expected a skill id or null, got {_kind(parent)}")
        if parent is not None:
            r.length(parent, f"{p}.parent", MAX_NAME_CHARS)
        skills[sid] = Skill(
            id=sid,
            mode=mode,
            name=r.str_(s, "name", p, required=False, default=sid, limit=MAX_NAME_CHARS),
            description=r.str_(s, "description", p, required=False),
            indicators=indicators,
            examples=r.strs(s, "examples", p),
            parent=parent,
            signature=signature,
            provenance=provenance,
        )
    for i, s in enumerate(skills.values()):
        if s.parent is not None and s.parent not in skills:
            raise r.fail(f"$.skills[{i}].parent", f"unknown skill {s.parent!r}")
    for i, s in enumerate(skills.values()):
        # A parent is the skill this one was split from: a chain of them must end at a root.
        chain = [s.id]
        up = s.parent
        while up is not None and up not in chain:
            chain.append(up)
            up = skills[up].parent
        if up is not None and up == s.id:
            loop = " -> ".join([*chain, up])
            raise r.fail(f"$.skills[{i}].parent", f"skill {s.id!r} is its own ancestor ({loop})")

    settings_d = r.obj(root.get("settings", {}), "$.settings")
    defaults = Settings()
    settings = Settings(
        fallback_skill=r.str_(settings_d, "fallback_skill", "$.settings", required=False, default=defaults.fallback_skill,
                              limit=MAX_NAME_CHARS),
        prior_strength=r.num(settings_d.get("prior_strength", defaults.prior_strength), "$.settings.prior_strength", lo=0, hi=MAX_STRENGTH, open_=True),
        mode_strength=r.num(settings_d.get("mode_strength", defaults.mode_strength), "$.settings.mode_strength", lo=0, hi=MAX_STRENGTH, open_=True),
        skill_strength=r.num(settings_d.get("skill_strength", defaults.skill_strength), "$.settings.skill_strength", lo=0, hi=MAX_STRENGTH, open_=True),
        exploration_floor=r.num(settings_d.get("exploration_floor", defaults.exploration_floor), "$.settings.exploration_floor", lo=0, hi=1),
        quality_floor=r.num(settings_d.get("quality_floor", defaults.quality_floor), "$.settings.quality_floor", lo=0, hi=1),
        challenge_z=r.num(settings_d.get("challenge_z", defaults.challenge_z), "$.settings.challenge_z", lo=0, hi=10),
    )
    if settings.exploration_floor + settings.quality_floor > 1:
        raise r.fail("$.settings", f"exploration_floor + quality_floor must be at most 1, got {settings.exploration_floor + settings.quality_floor:g}")
    if settings.fallback_skill not in skills:
        raise r.fail("$.settings.fallback_skill", f"unknown skill {settings.fallback_skill!r}")

    agents: dict[str, Agent] = {}
    for i, a in enumerate(r.arr(root.get("agents"), "$.agents")):
        p = f"$.agents[{i}]"
        a = r.obj(a, p)
        aid = r.str_(a, "id", p, limit=MAX_NAME_CHARS)
        if not _AGENT_ID_RE.match(aid):
            raise r.fail(f"{p}.id", f"{aid!r} is not a valid agent id")
        if aid in agents:
            raise r.fail(f"{p}.id", f"duplicate agent id {aid!r}")
        model = r.str_(a, "model", p, limit=MAX_NAME_CHARS)
        if not model.strip():
            raise r.fail(f"{p}.model", "expected a model name, got an empty string")
        cw = r.whole(a.get("context_window"), f"{p}.context_window", lo=1, hi=MAX_TOKENS)
        price = None
        if a.get("price") is not None:
            pr = r.obj(a["price"], f"{p}.price")
            price = Price.per_million(
                r.num(pr.get("input_per_mtok"), f"{p}.price.input_per_mtok", lo=0, hi=MAX_PER_MTOK),
                r.num(pr.get("output_per_mtok"), f"{p}.price.output_per_mtok", lo=0, hi=MAX_PER_MTOK),
            )
        pri = r.obj(a.get("prior"), f"{p}.prior")
        mean = r.num(pri.get("mean"), f"{p}.prior.mean", lo=0, hi=1, open_=True)
        pmodes = r.obj(pri.get("modes", {}), f"{p}.prior.modes")
        for k, v in pmodes.items():
            if k not in modes:
                raise r.fail(f"{p}.prior.modes.{k}", f"unknown mode {k!r}")
            r.num(v, f"{p}.prior.modes.{k}", lo=0, hi=1, open_=True)
        pskills = r.obj(pri.get("skills", {}), f"{p}.prior.skills")
        for k, v in pskills.items():
            if k not in skills:
                raise r.fail(f"{p}.prior.skills.{k}", f"unknown skill {k!r}")
            r.num(v, f"{p}.prior.skills.{k}", lo=0, hi=1, open_=True)
        agents[aid] = Agent(
            id=aid,
            model=model,
            name=r.str_(a, "name", p, required=False, default=aid, limit=MAX_NAME_CHARS),
            context_window=cw,
            prior=Prior(mean, r.str_(pri, "source", f"{p}.prior", required=False), dict(pmodes), dict(pskills)),
            price=price,
        )
    if not agents:
        raise r.fail("$.agents", "a handbook needs at least one agent")

    hb = Handbook(
        name=name,
        version=version,
        modes=modes,
        skills=skills,
        agents=agents,
        settings=settings,
        description=r.str_(meta, "description", "$.metadata", required=False),
        parent_version=parent_version,
        created=r.str_(meta, "created", "$.metadata", required=False),
        history=list(history),
        evidence_through=through,
    )

    for aid, per_skill in r.obj(root.get("competence", {}), "$.competence").items():
        if aid not in agents:
            raise r.fail(f"$.competence.{aid}", f"unknown agent {aid!r}")
        for sid, cell in r.obj(per_skill, f"$.competence.{aid}").items():
            p = f"$.competence.{aid}.{sid}"
            if sid not in skills:
                raise r.fail(p, f"unknown skill {sid!r}")
            cell = r.obj(cell, p)
            hb.evidence.add(
                aid, sid, r.num(cell.get("successes", 0), f"{p}.successes", lo=0, hi=MAX_COUNT),
                r.num(cell.get("failures", 0), f"{p}.failures", lo=0, hi=MAX_COUNT),
            )

    for aid, per_mode in r.obj(root.get("costs", {}), "$.costs").items():
        if aid not in agents:
            raise r.fail(f"$.costs.{aid}", f"unknown agent {aid!r}")
        for mid, c in r.obj(per_mode, f"$.costs.{aid}").items():
            p = f"$.costs.{aid}.{mid}"
            if mid not in modes:
                raise r.fail(p, f"unknown mode {mid!r}")
            c = r.obj(c, p)
            hb.set_cost(aid, mid, CostStat(
                n=r.num(c.get("n", 0), f"{p}.n", lo=0, hi=MAX_COUNT),
                prompt_tokens=r.num(c.get("prompt_tokens", 0), f"{p}.prompt_tokens", lo=0, hi=MAX_TOKENS),
                completion_tokens=r.num(c.get("completion_tokens", 0), f"{p}.completion_tokens", lo=0, hi=MAX_TOKENS),
                usd=r.num(c.get("usd", 0), f"{p}.usd", lo=0, hi=MAX_USD),
            ))
    return hb
