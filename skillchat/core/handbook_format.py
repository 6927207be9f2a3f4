"""The handbook document (JSON): its limits, the validating reader that names the JSON path of the
first problem, and how the parts of a handbook are written. core/handbook.py's from_dict / to_dict
put it together."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

from skillchat.core import patterns
from skillchat.core.evidence import CostStat
from skillchat.core.ports import Price
from skillchat.core.taxonomy import Agent, Mode, Prior, Settings, Skill
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
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]*$")


def skill_dict(sk: Skill) -> dict[str, Any]:
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


def agent_dict(a: Agent) -> dict[str, Any]:
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


class Reader:
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

    @overload
    def whole(self, value: Any, path: str, *, lo: int, hi: int, null: Literal[False] = False) -> int: ...
    @overload
    def whole(self, value: Any, path: str, *, lo: int, hi: int, null: Literal[True]) -> int | None: ...

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

    def entry(self, value: Any, path: str, pattern: re.Pattern[str], kind: str,
              seen: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """An object of a list of modes, skills or agents, and its id: well-formed and not seen before."""
        d = self.obj(value, path)
        ident = self.str_(d, "id", path, limit=MAX_NAME_CHARS)
        if not pattern.match(ident):
            raise self.fail(f"{path}.id", f"{ident!r} is not a valid {kind} id")
        if ident in seen:
            raise self.fail(f"{path}.id", f"duplicate {kind} id {ident!r}")
        return d, ident

    def per_agent(self, root: dict[str, Any], key: str, agents: Mapping[str, Any], inner: Mapping[str, Any],
                  kind: str) -> Iterator[tuple[str, str, dict[str, Any], str]]:
        """The cells of a table by agent, then skill or mode ($.competence, $.costs), with their paths."""
        for aid, per in self.obj(root.get(key, {}), f"$.{key}").items():
            if aid not in agents:
                raise self.fail(f"$.{key}.{aid}", f"unknown agent {aid!r}")
            for k, cell in self.obj(per, f"$.{key}.{aid}").items():
                p = f"$.{key}.{aid}.{k}"
                if k not in inner:
                    raise self.fail(p, f"unknown {kind} {k!r}")
                yield aid, k, self.obj(cell, p), p

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


# --- reading a document, one section at a time (each names the JSON path of what it refuses) -----


def check_schema(r: Reader, data: Any) -> dict[str, Any]:
    root = r.obj(data, "$")
    sv = root.get("schema_version")
    if sv != SCHEMA_VERSION:
        raise r.fail("$.schema_version", f"unsupported schema version {sv!r} (this skillchat reads {SCHEMA_VERSION})")
    return root


@dataclass(frozen=True, slots=True)
class Metadata:
    raw: dict[str, Any]  # description and created are read last, as they always were
    name: str
    version: int
    parent_version: int | None
    history: list[Any]
    evidence_through: int | None


def read_metadata(r: Reader, root: dict[str, Any]) -> Metadata:
    meta = r.obj(root.get("metadata"), "$.metadata")
    name = r.str_(meta, "name", "$.metadata", limit=MAX_NAME_CHARS)
    if not NAME_RE.match(name):
        raise r.fail("$.metadata.name", f"{name!r} is not a valid name (lowercase letters, digits, '-' and '_')")
    version = r.whole(meta.get("version"), "$.metadata.version", lo=1, hi=INT64_MAX)
    assert version is not None  # not nullable
    parent_version = r.whole(meta.get("parent_version"), "$.metadata.parent_version", lo=1, hi=INT64_MAX, null=True)
    history = r.arr(meta.get("history", []), "$.metadata.history")
    # A rating id: 0 means none is in it yet.
    through = r.whole(meta.get("evidence_through"), "$.metadata.evidence_through", lo=0, hi=INT64_MAX, null=True)
    return Metadata(meta, name, version, parent_version, history, through)


def read_modes(r: Reader, root: dict[str, Any]) -> dict[str, Mode]:
    modes: dict[str, Mode] = {}
    for i, m in enumerate(r.arr(root.get("modes"), "$.modes")):
        p = f"$.modes[{i}]"
        m, mid = r.entry(m, p, NAME_RE, "mode", modes)
        ct = m.get("completion_tokens", 400)
        ct = int(r.num(ct, f"{p}.completion_tokens", lo=1, hi=MAX_TOKENS))
        modes[mid] = Mode(mid, r.str_(m, "name", p, required=False, default=mid, limit=MAX_NAME_CHARS),
                          r.str_(m, "description", p, required=False), ct)
    if not modes:
        raise r.fail("$.modes", "a handbook needs at least one mode")
    return modes


def read_skills(r: Reader, root: dict[str, Any], modes: Mapping[str, Mode]) -> dict[str, Skill]:
    skills: dict[str, Skill] = {}
    for i, s in enumerate(r.arr(root.get("skills"), "$.skills")):
        p = f"$.skills[{i}]"
        s, sid = r.entry(s, p, _ID_RE, "skill", skills)
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
            provenance = _check_links(r, r.obj(provenance, f"{p}.provenance"), f"{p}.provenance")
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
    _check_lineage(r, skills)
    return skills


def _check_links(r: Reader, prov: dict[str, Any], path: str) -> dict[str, Any]:
    """The provenance keys that relearning follows to map old turns onto today's skills. The rest of
    provenance (rationale, evidence, history) is free-form: it is only shown."""
    for key in ("merged_from", "split_into"):
        if key in prov:
            r.strs(prov, key, path)
    if "discovered_from" in prov:
        r.str_(prov, "discovered_from", path, limit=MAX_NAME_CHARS)
    if "min_similarity" in prov:
        r.num(prov["min_similarity"], f"{path}.min_similarity", lo=0, hi=1)
    for i, link in enumerate(r.arr(prov.get("merged_discoveries", []), f"{path}.merged_discoveries")):
        lp = f"{path}.merged_discoveries[{i}]"
        link = r.obj(link, lp)
        sig = r.obj(link.get("signature"), f"{lp}.signature")
        for k, v in sig.items():
            r.num(v, f"{lp}.signature.{k}", lo=0, hi=MAX_COUNT)
        if "min_similarity" in link:
            r.num(link["min_similarity"], f"{lp}.min_similarity", lo=0, hi=1)
    return prov


def _check_lineage(r: Reader, skills: Mapping[str, Skill]) -> None:
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


def read_settings(r: Reader, root: dict[str, Any], skills: Mapping[str, Skill]) -> Settings:
    settings_d = r.obj(root.get("settings", {}), "$.settings")
    defaults = Settings()

    def num(key: str, hi: float, open_: bool = False) -> float:
        return r.num(settings_d.get(key, getattr(defaults, key)), f"$.settings.{key}", lo=0, hi=hi, open_=open_)

    settings = Settings(
        fallback_skill=r.str_(settings_d, "fallback_skill", "$.settings", required=False, default=defaults.fallback_skill,
                              limit=MAX_NAME_CHARS),
        prior_strength=num("prior_strength", MAX_STRENGTH, open_=True),
        mode_strength=num("mode_strength", MAX_STRENGTH, open_=True),
        skill_strength=num("skill_strength", MAX_STRENGTH, open_=True),
        exploration_floor=num("exploration_floor", 1),
        quality_floor=num("quality_floor", 1),
        challenge_z=num("challenge_z", 10),
    )
    floors = settings.exploration_floor + settings.quality_floor
    if floors > 1:
        raise r.fail("$.settings", f"exploration_floor + quality_floor must be at most 1, got {floors:g}")
    if settings.fallback_skill not in skills:
        raise r.fail("$.settings.fallback_skill", f"unknown skill {settings.fallback_skill!r}")
    return settings


def read_agents(r: Reader, root: dict[str, Any], modes: Mapping[str, Mode], skills: Mapping[str, Skill]) -> dict[str, Agent]:
    agents: dict[str, Agent] = {}
    for i, a in enumerate(r.arr(root.get("agents"), "$.agents")):
        p = f"$.agents[{i}]"
        a, aid = r.entry(a, p, _AGENT_ID_RE, "agent", agents)
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
    return agents


def read_competence(r: Reader, root: dict[str, Any], agents: Mapping[str, Agent],
                    skills: Mapping[str, Skill]) -> list[tuple[str, str, float, float]]:
    """(agent, skill, successes, failures) cells, in document order."""
    cells: list[tuple[str, str, float, float]] = []
    for aid, sid, cell, p in r.per_agent(root, "competence", agents, skills, "skill"):
        cells.append((
            aid, sid, r.num(cell.get("successes", 0), f"{p}.successes", lo=0, hi=MAX_COUNT),
            r.num(cell.get("failures", 0), f"{p}.failures", lo=0, hi=MAX_COUNT),
        ))
    return cells


def read_costs(r: Reader, root: dict[str, Any], agents: Mapping[str, Agent],
               modes: Mapping[str, Mode]) -> list[tuple[str, str, CostStat]]:
    """(agent, mode, cost statistics), in document order."""
    stats: list[tuple[str, str, CostStat]] = []
    for aid, mid, c, p in r.per_agent(root, "costs", agents, modes, "mode"):
        stats.append((aid, mid, CostStat(
            n=r.num(c.get("n", 0), f"{p}.n", lo=0, hi=MAX_COUNT),
            prompt_tokens=r.num(c.get("prompt_tokens", 0), f"{p}.prompt_tokens", lo=0, hi=MAX_TOKENS),
            completion_tokens=r.num(c.get("completion_tokens", 0), f"{p}.completion_tokens", lo=0, hi=MAX_TOKENS),
            usd=r.num(c.get("usd", 0), f"{p}.usd", lo=0, hi=MAX_USD),
        )))
    return stats
