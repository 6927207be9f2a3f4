"""A conversation as Markdown (to read or share) or JSON (every turn with its routing decision).

Either is safe to print on a terminal (`cat chat.md`): the Markdown leaves out escape sequences and
control characters, and the JSON keeps every character exactly but writes those out as \\u escapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from skillchat.core.handbook import Handbook
from skillchat.errors import SkillchatError
from skillchat.render import usd
from skillchat.store import TraceStore
from skillchat.text_safety import clean

FORMATS = ("markdown", "json")
_RATING = {1.0: "rated up", 0.0: "rated down"}


def export_conversation(store: TraceStore, conversation_id: int, fmt: str, hb: Handbook | None = None) -> str:
    if fmt not in FORMATS:
        raise SkillchatError(f"export format {fmt!r}: choose {' or '.join(FORMATS)}")
    info = store.conversation(conversation_id)
    if info is None:
        raise SkillchatError(f"no conversation {conversation_id}")
    entries = store.transcript(conversation_id)
    turns = {t.id: t for t in store.turns_of(conversation_id)}
    if fmt == "json":
        doc: dict[str, Any] = {
            "conversation": {"id": info.id, "title": info.title, "created_at": info.created_at,
                             "updated_at": info.updated_at, "demo": info.demo},
            "messages": [
                {"id": e.message_id, "role": e.role, "content": e.content, "created_at": e.created_at,
                 "turn_id": e.turn_id, "agent_id": e.agent_id, "partial": e.partial}
                for e in entries
            ],
            "turns": [_turn_dict(t) for t in turns.values()],
        }
        # json escapes C0 characters itself, but leaves DEL and C1 (U+0080 to U+009F) raw.
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        return re.sub("[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"

    def agent_name(agent_id: str | None) -> str:
        if hb is not None and agent_id in hb.agents:
            return hb.agents[agent_id].name
        return agent_id or "assistant"

    lines = [f"# {info.title or 'Conversation'}", "",
             f"*skillchat conversation {info.id}, started {info.created_at}*"
             + (" (demo: scripted answers, no model was called)" if info.demo else ""), ""]
    for e in entries:
        t = turns.get(e.turn_id) if e.turn_id is not None else None
        if e.role == "user":
            lines += ["## You", "", e.content, ""]
            if t is not None and t.status in ("failed", "refused") and t.error:
                lines += [f"> *No answer: {t.error}*", ""]
            continue
        meta = [t.model or "" if t else ""]
        if t is not None:
            meta.append(usd(t.cost_usd or 0.0))
            meta.append(f"turn {t.id}")
            if t.rating is not None:
                meta.append(_RATING.get(t.rating, f"rated {t.rating:.2f}"))
            if t.demo:
                meta.append("demo")
        head = f"## {agent_name(e.agent_id)}"
        lines += [head, "", "*" + ", ".join(m for m in meta if m) + "*", "", e.content, ""]
        if e.partial:
            lines += ["> *(stopped before the end)*", ""]
    return clean("\n".join(lines)).rstrip() + "\n"


def _turn_dict(t: Any) -> dict[str, Any]:
    return {
        "id": t.id, "status": t.status, "started_at": t.started_at, "handbook": t.handbook,
        "handbook_version": t.handbook_version, "mode": t.mode, "skills": t.skills, "policy": t.policy,
        "chosen_agent": t.chosen_agent, "probability": t.probability, "agent_id": t.agent_id, "model": t.model,
        "est_cost_usd": t.est_cost_usd, "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
        "cost_usd": t.cost_usd, "latency_s": t.latency_s, "ttft_s": t.ttft_s,
        "fallback_chain": [a.to_dict() for a in t.attempts], "error": t.error, "demo": t.demo,
        "rating": t.rating, "decision": t.decision.to_dict() if t.decision else None,
    }
