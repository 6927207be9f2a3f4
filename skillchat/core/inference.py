"""Skill inference: which skills does the conversation need now, and how much of each?

The default inferrer is local and offline: indicator phrases and patterns, plus tf-idf similarity
to each skill's description and examples (or a learned signature).

Which turns count: the latest user message decides when it is confidently about something of its
own. Earlier turns (a decayed digest of the recent user messages and the last answer) count only
when the latest message is a follow-up ("now make it faster", "and if it were 3x?", "why?",
"shorter please") or matches nothing confidently. So "What is 15% of 240?" after a code review is
math, "hey, how's it going?" after calculus is small talk, and "now make it faster" after a code
question is still code. An explicit switch ("unrelated question: ...") drops the context.

Indicators: a phrase, or `re:<pattern>`. A pattern with a group named `weak`, e.g.
`re:(?P<weak>^\\s*who\\b)`, counts WEAK_WEIGHT instead of a full hit: enough to decide a message that
matches nothing else (a plain question about facts is factual QA), too little to outvote a real
indicator.

Anything that implements `SkillInferrer` (for example a cheap LLM that reads the handbook and names
weighted skills, as in the paper) can replace it.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from skillchat.core.handbook import Handbook
from skillchat.core.ports import Message
from skillchat.core.text import content_stems, stems, words

# How much earlier turns count, relative to the latest user message, when they count at all.
PREVIOUS_USER_DECAY = (0.5, 0.25, 0.125)
LAST_ASSISTANT_WEIGHT = 0.25
# A follow-up has little content of its own: the turn it follows carries the topic.
FOLLOW_UP_DECAY = (1.0, 0.25)
FOLLOW_UP_ASSISTANT_WEIGHT = 0.5
FOLLOW_UP_LATEST_WEIGHT = 0.5
# How much a `(?P<weak>...)` pattern counts, relative to a full indicator hit.
WEAK_WEIGHT = 0.5
# Bounds the work on a pasted log or file: the head and tail carry the request.
MAX_CHARS_HEAD, MAX_CHARS_TAIL = 12_000, 4_000
# Patterns see less: a backtracking one can take time polynomial in the text's length (those that
# could take exponential time are refused when the handbook is read, core/patterns.py).
PATTERN_CHARS_HEAD, PATTERN_CHARS_TAIL = 3_000, 1_000


@dataclass(frozen=True, slots=True)
class ActiveSkill:
    id: str
    weight: float
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkillProfile:
    mode: str
    skills: tuple[ActiveSkill, ...]
    confident: bool = True

    def weights(self) -> dict[str, float]:
        return {s.id: s.weight for s in self.skills}


class SkillInferrer(Protocol):
    def infer(self, messages: Sequence[Message]) -> SkillProfile: ...


# Quoted material is usually what the request is about, not the request: in "translate 'good
# morning'" the greeting is the object. Indicators found inside quotes count half.
_QUOTED_RE = re.compile(r'"[^"\n]{1,300}"|\u201c[^\u201d\n]{1,300}\u201d|(?<![\w\'])\'[^\'\n]{1,300}\'(?![\w])')
QUOTED_WEIGHT = 0.5


def _split_quotes(text: str) -> tuple[str, str]:
    quoted = _QUOTED_RE.findall(text)
    if not quoted:
        return text, ""
    # A stand-in keeps the quotes' place, so patterns about quoted words ("is it 'x' or 'y'") still see them.
    return _QUOTED_RE.sub('"q"', text), " ".join(quoted)


def _clip(text: str, head: int = MAX_CHARS_HEAD, tail: int = MAX_CHARS_TAIL) -> str:
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]


class KeywordInferrer:
    """Indicator hits plus tf-idf similarity, over the latest message and a decayed digest."""

    def __init__(
        self,
        handbook: Handbook,
        *,
        max_skills: int = 4,
        min_share: float = 0.5,
        threshold: float = 0.5,
        similarity_weight: float = 2.5,
        min_similarity: float = 0.05,
        own_topic: float = 1.0,
        strong_topic: float = 2.0,
    ) -> None:
        self.handbook = handbook
        self.max_skills = max_skills
        self.min_share = min_share
        self.threshold = threshold
        self.similarity_weight = similarity_weight
        self.min_similarity = min_similarity
        # The latest message stands alone from own_topic up (about one full indicator hit), and even
        # a follow-up-looking one ("and what's the capital of France?") from strong_topic up.
        self.own_topic = own_topic
        self.strong_topic = strong_topic
        self._phrases: dict[str, list[tuple[tuple[str, ...], str, str]]] = defaultdict(list)
        self._patterns: list[tuple[re.Pattern[str], str, str, str, float]] = []
        self._build_indicators()
        self._idf: dict[str, float] = {}
        self._default_idf = 1.0
        self._postings: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self._build_vectors()
        # Every turn re-reads the recent messages; only the newest one is new. Results are shared,
        # so callers must not mutate them.
        self._score = lru_cache(maxsize=256)(self._score_text)

    # --- index ------------------------------------------------------------------------------
    def _build_indicators(self) -> None:
        for skill in self.handbook.skills.values():
            for ind in skill.indicators:
                if ind.startswith("re:"):
                    pattern = re.compile(ind[3:], re.IGNORECASE)
                    strength = WEAK_WEIGHT if "weak" in pattern.groupindex else 1.0
                    label = ind[3:]
                    # A long alternation says nothing at a glance; its start says what it is about.
                    shown = label if len(label) <= 40 else label[:38] + "…"
                    self._patterns.append((pattern, skill.id, label, shown, strength))
                else:
                    toks = tuple(stems(ind))
                    if toks:
                        self._phrases[toks[0]].append((toks, skill.id, ind))

    def _build_vectors(self) -> None:
        docs: dict[str, Counter[str]] = {}
        for skill in self.handbook.skills.values():
            if skill.signature:
                docs[skill.id] = Counter(dict(skill.signature))
                continue
            text = " ".join(
                [skill.name, skill.description, *(i for i in skill.indicators if not i.startswith("re:")), *skill.examples]
            )
            docs[skill.id] = Counter(content_stems(text))
        n = len(docs)
        df: Counter[str] = Counter()
        for tf in docs.values():
            df.update(tf.keys())
        self._idf = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
        self._default_idf = math.log(n + 1) + 1.0
        for sid, tf in docs.items():
            skill = self.handbook.skills[sid]
            if skill.signature:
                vec = {t: w * self._idf[t] for t, w in tf.items()}
            else:
                vec = {t: (1.0 + math.log(c)) * self._idf[t] for t, c in tf.items()}
            norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
            for t, v in vec.items():
                self._postings[t].append((sid, v / norm))

    # --- scoring ----------------------------------------------------------------------------
    def _score_text(self, text: str) -> tuple[dict[str, float], dict[str, list[str]], frozenset[str]]:
        """Raw relevance of every matching skill to one text, the reasons, and the skills whose
        indicator hits were all weak patterns."""
        text = _clip(text)
        hits: dict[str, float] = defaultdict(float)
        reasons: dict[str, list[str]] = defaultdict(list)
        # Keyed by the stemmed phrase: "optimize" and "optimizing" are one indicator, not two.
        seen: set[tuple[str, object]] = set()
        full: set[str] = set()
        request, quoted = _split_quotes(text)
        for part, weight in ((request, 1.0), (quoted, QUOTED_WEIGHT)):
            if not part:
                continue
            toks = stems(part)
            for i, t in enumerate(toks):
                for phrase, sid, label in self._phrases.get(t, ()):
                    if (sid, phrase) in seen:
                        continue
                    if tuple(toks[i : i + len(phrase)]) == phrase:
                        seen.add((sid, phrase))
                        hits[sid] += weight * (1.0 + 0.25 * (len(phrase) - 1))
                        full.add(sid)
                        reasons[sid].append(f'"{label}"')
            clipped = _clip(part, PATTERN_CHARS_HEAD, PATTERN_CHARS_TAIL)
            for pattern, sid, label, shown, strength in self._patterns:
                if (sid, label) not in seen and pattern.search(clipped):
                    seen.add((sid, label))
                    hits[sid] += weight * strength
                    reasons[sid].append(f"pattern /{shown}/")
                    if strength == 1.0:
                        full.add(sid)
        scores = {sid: math.log2(1.0 + h) for sid, h in hits.items()}

        tf: dict[str, float] = dict(Counter(content_stems(request)))
        for t in content_stems(quoted):
            tf[t] = tf.get(t, 0.0) + QUOTED_WEIGHT
        if tf:
            q = {t: (1.0 + math.log(max(c, 1.0)) if c >= 1 else c) * self._idf.get(t, self._default_idf) for t, c in tf.items()}
            qn = math.sqrt(sum(v * v for v in q.values())) or 1.0
            sims: dict[str, float] = defaultdict(float)
            for t, qv in q.items():
                for sid, sv in self._postings.get(t, ()):
                    sims[sid] += qv * sv
            for sid, dot in sims.items():
                sim = dot / qn
                if sim >= self.min_similarity:
                    scores[sid] = scores.get(sid, 0.0) + self.similarity_weight * sim
                    if sim >= 0.15:
                        reasons[sid].append(f"similar to its examples ({sim:.2f})")
        return scores, reasons, frozenset(sid for sid in hits if sid not in full)

    def infer(self, messages: Sequence[Message]) -> SkillProfile:
        users = [m for m in messages if m.role == "user"]
        if not users:
            return self._fallback("no user message")
        text = users[-1].content
        # "Different question: how long do dogs live?" asks what follows the announcement.
        latest, latest_reasons, weak_only = self._score(_after_switch(text))
        digest, latest_w = self._context(messages, users, text, latest)
        total = {sid: latest_w * v for sid, v in latest.items()}
        context: set[str] = set()
        for ctx_text, w in digest:
            ctx_scores, _, ctx_weak = self._score(ctx_text)
            # Earlier turns lend their topic, not their form: "it was a question" says nothing now.
            for sid, s in ctx_scores.items():
                if sid not in ctx_weak:
                    total[sid] = total.get(sid, 0.0) + w * s
                    context.add(sid)
        if context:
            # Likewise, a follow-up's own form ("can you show an example?") is no topic.
            for sid in weak_only:
                if sid not in context:
                    total.pop(sid, None)

        if not total or max(total.values()) < self.threshold:
            return self._fallback("no skill matched confidently")
        ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
        top = ranked[0][1]
        kept = [(sid, s) for sid, s in ranked[: self.max_skills] if s >= self.min_share * top]
        own_scores = [(sid, v) for sid, v in latest.items() if sid in total]
        if context and own_scores:
            # What the latest message asks for stays in the profile even when the context is louder:
            # "now make it faster" after a long code question is about performance too.
            own = max(own_scores, key=lambda kv: (kv[1], kv[0]))
            if own[1] >= self.threshold and own[0] not in {sid for sid, _ in kept}:
                kept = kept[: self.max_skills - 1] + [(own[0], total[own[0]])]
        mode = dominant_mode(self.handbook, [ActiveSkill(sid, s) for sid, s in kept])
        # A weak hint ("it ends with a question mark") may decide the mode, but when the mode went
        # elsewhere it is no part of the answer's skills.
        kept = [
            (sid, s) for sid, s in kept
            if not (sid in weak_only and sid not in context and self.handbook.skills[sid].mode != mode)
        ]
        mass = sum(s for _, s in kept)
        active = []
        for sid, s in kept:
            why = list(latest_reasons.get(sid, ()))
            if sid in context and latest.get(sid, 0.0) < s:
                why.append("earlier in the conversation")
            active.append(ActiveSkill(sid, s / mass, tuple(why)))
        return SkillProfile(mode, tuple(active), True)

    def _context(
        self, messages: Sequence[Message], users: Sequence[Message], text: str, latest: Mapping[str, float]
    ) -> tuple[list[tuple[str, float]], float]:
        """The earlier texts that count for this turn with their weights (none when it stands
        alone), and the weight of the latest message itself."""
        if len(users) < 2 and not any(m.role == "assistant" for m in messages):
            return [], 1.0
        kind = turn_kind(text)
        if kind == "switch":
            return [], 1.0
        strength = max(latest.values(), default=0.0)
        latest_w = 1.0
        decay: tuple[float, ...]
        if kind == "follow-up" and strength < self.strong_topic:
            # A follow-up continues the previous task; what it names is that task's new object:
            # "now one about the sun" after a haiku is more poetry, not astronomy.
            decay, assistant_w, latest_w = FOLLOW_UP_DECAY, FOLLOW_UP_ASSISTANT_WEIGHT, FOLLOW_UP_LATEST_WEIGHT
        elif strength >= self.own_topic or kind == "closing":
            return [], 1.0
        else:
            decay, assistant_w = PREVIOUS_USER_DECAY, LAST_ASSISTANT_WEIGHT
        digest = [(m.content, w) for m, w in zip(reversed(users[:-1]), decay, strict=False)]
        last_assistant = next((m for m in reversed(messages) if m.role == "assistant"), None)
        if last_assistant is not None:
            digest.append((last_assistant.content, assistant_w))
        return digest, latest_w

    def _fallback(self, why: str) -> SkillProfile:
        fb = self.handbook.fallback()
        return SkillProfile(fb.mode, (ActiveSkill(fb.id, 1.0, (why,)),), False)


# --- follow-ups and topic switches -----------------------------------------------------------
# English cues. A follow-up refers back to the previous turn and asks for more of it; it is short,
# because a message with a subject of its own names it.
_SWITCH_RE = re.compile(
    r"\b(unrelated|different (question|topic|thing)|another (question|topic|thing)|new (question|topic)|"
    r"separate (question|thing|topic)|change of (topic|subject)|switching (topics?|gears)|on another note|"
    r"changing the subject)\b",
    re.IGNORECASE,
)
_FOLLOW_START = tuple(
    tuple(s.split())
    for s in (
        "and", "but", "so", "now", "also", "then", "or", "plus", "what about", "how about", "what if", "why",
        "how come", "same", "again", "instead", "make it", "do it", "redo", "try again", "can you also",
        "could you also", "it", "that", "this", "which one", "ok but", "ok so", "okay so", "still", "explain",
        "show me", "continue", "more", "another", "one more", "how did you", "how do you know", "are you sure",
    )
)
_REFERENTIAL = frozenset("it its it's that this these those them they one ones there above previous same".split())
_EDITS = frozenset(
    """shorter longer simpler more less faster slower funnier formal casual again another instead version continue
    expand elaborate example examples step steps detail details shorten lengthen simplify rewrite redo briefer
    clearer tone""".split()
)
_ACKS = frozenset(
    """thanks thank thx ty you so much very a lot ok okay k cool great nice awesome perfect sweet good fine got
    it that that's this is was it's works worked helps helped helpful makes sense brilliant amazing lovely bye
    goodbye later see cya night cheers wow haha lol yes yeah yep no nope sure alright all right gotcha
    understood excellent fantastic appreciate appreciated really super""".split()
)
# A greeting opens a new exchange, whatever came before ("hey, how's it going?" after calculus);
# a laugh is no follow-up either, though it may still be about the joke ("haha same, I'm starving").
_HELLOS = frozenset("hi hello hey heya hiya howdy yo sup greetings morning evening".split())
_LAUGHS = frozenset("haha hahaha lol lmao hehe aww omg".split())
FOLLOW_UP_MAX_WORDS = 12


def _one_of(word: str, group: frozenset[str]) -> bool:
    # Chat stretches words ("hiii", "heyyy", "hellooo"): the stretched letter is still one.
    return word in group or re.sub(r"(.)\1+$", r"\1", word) in group


def _after_switch(text: str) -> str:
    """The request after an opening topic-switch announcement, else the text itself."""
    m = _SWITCH_RE.search(text[:200])
    if m is None or m.start() > 40:
        return text
    rest = text[m.end():].lstrip(" \t:,.;!-—–")
    return rest if words(rest) else text


def turn_kind(text: str) -> str:
    """'switch' (it says it changes topic, or greets), 'closing' (thanks, ok, bye), 'follow-up' or 'new'."""
    if _SWITCH_RE.search(text[:200]):
        return "switch"
    ws = words(text[:400])
    if not ws:
        return "new"
    if len(ws) <= 8 and all(w in _ACKS for w in ws):
        return "closing"
    if _one_of(ws[0], _HELLOS):
        return "switch"
    if len(ws) > FOLLOW_UP_MAX_WORDS or _one_of(ws[0], _LAUGHS):
        return "new"
    if any(tuple(ws[: len(start)]) == start for start in _FOLLOW_START):
        return "follow-up"
    if len(ws) <= 6 and any(w in _REFERENTIAL or w in _EDITS for w in ws):
        return "follow-up"
    if len(ws) <= 2 and text.rstrip().endswith("?"):
        return "follow-up"
    return "new"


def profile_from_weights(handbook: Handbook, weights: Mapping[str, float], evidence: str = "") -> SkillProfile:
    """A profile from explicit skill weights (an LLM orchestrator, a replayed log, a test).

    Unknown ids are dropped rather than scored; an empty result falls back to the general skill.
    """
    known = {s: w for s, w in weights.items() if s in handbook.skills and w > 0}
    total = sum(known.values())
    if total <= 0:
        fb = handbook.fallback()
        return SkillProfile(fb.mode, (ActiveSkill(fb.id, 1.0, ("no known skill given",)),), False)
    active = tuple(ActiveSkill(s, w / total, (evidence,) if evidence else ()) for s, w in known.items())
    return SkillProfile(dominant_mode(handbook, active), active, True)


def dominant_mode(handbook: Handbook, active: Sequence[ActiveSkill]) -> str:
    """The mode holding most of the skill weight (ties: alphabetical, so it is reproducible)."""
    by_mode: dict[str, float] = defaultdict(float)
    for a in active:
        by_mode[handbook.skills[a.id].mode] += a.weight
    return max(by_mode.items(), key=lambda kv: (kv[1], kv[0]))[0]
