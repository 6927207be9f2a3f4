"""`skillchat handbook list | show NAME | validate FILE | history [NAME] | diff A B | use REF | rollback [NAME]`."""

from __future__ import annotations

import argparse

from skillchat.text_safety import one_line, plain, shown


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the handbooks you can use")
    show = sub.add_parser("show", help="modes, skills and agents of a handbook")
    show.add_argument("name", nargs="?", help="NAME, NAME@VERSION or a file (default: the active one)")
    val = sub.add_parser("validate", help="check a handbook file; exit status 2 when it is malformed")
    val.add_argument("file")
    hist = sub.add_parser("history", help="every version of a handbook: where it came from and what changed")
    hist.add_argument("name", nargs="?", help="handbook name (default: the active one)")
    diff = sub.add_parser("diff", help="what changed between two versions: skills, evidence, competence, costs")
    diff.add_argument("a", help="NAME@VERSION, or a version number of the active handbook")
    diff.add_argument("b", help="NAME@VERSION, or a version number of the active handbook")
    diff.add_argument("--json", action="store_true", help="print the difference as JSON")
    use = sub.add_parser("use", help="make NAME@VERSION the active handbook (written to your config file)")
    use.add_argument("ref", help="NAME@VERSION (NAME alone: its newest version, pinned)")
    rb = sub.add_parser("rollback", help="go back to the version the active one was derived from")
    rb.add_argument("name", nargs="?", help="handbook name (default: the active one)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from skillchat import config, handbooks

    console = Console()
    if args.action == "list":
        from rich.table import Table

        active = config.load().handbook.partition("@")[0]
        t = Table(box=None)
        for col in ("", "name", "version", "where", "description"):
            t.add_column(col)
        for info in handbooks.list_handbooks():
            t.add_row("*" if info.name == active else "", info.name, str(info.version),
                      "shipped" if info.shipped else plain(str(info.path.parent)), plain(info.description))
        console.print(t)
        return 0
    if args.action == "validate":
        hb = handbooks.load_file(args.file)
        print(f"{shown(args.file, 200)}: ok ({hb.name}@{hb.version}: {len(hb.modes)} modes, {len(hb.skills)} skills, "
              f"{len(hb.agents)} agents, {hb.evidence.total():g} rated observations)")
        return 0
    if args.action in ("history", "diff", "use", "rollback"):
        return _versions_action(args, console)
    hb = handbooks.load(args.name or config.load().handbook)
    console.print(show_handbook(hb))
    return 0


def _versions_action(args: argparse.Namespace, console) -> int:  # type: ignore[no-untyped-def]
    from skillchat import config, handbooks, relearning

    cfg = config.load()
    active_name = cfg.handbook.partition("@")[0]

    def active():  # type: ignore[no-untyped-def]
        return handbooks.load(cfg.handbook)

    if args.action == "history":
        name = args.name or active().name
        vs = handbooks.versions(name)
        if not vs:
            handbooks.resolve(name)  # raises the usual "no handbook named ..." error
        try:
            act = active()
        except Exception:  # a broken active handbook must not hide the history
            act = None
        console.print(history_table(name, vs, act if act is not None and act.name == name else None))
        return 0
    if args.action == "diff":
        from skillchat.core.relearn import handbook_diff

        a, b = (handbooks.load(_ref(x, active_name)) for x in (args.a, args.b))
        d = handbook_diff(a, b)
        if args.json:
            import json

            print(json.dumps(d, indent=2))
        else:
            console.print(diff_renderable(d, a, b))
        return 0
    if args.action == "use":
        ref = relearning.activate(cfg, args.ref)
        console.print(plain(f"Active handbook: {ref} (in {relearning.config_path(cfg)})"))
        return 0
    # rollback
    cur = active()
    name = args.name or cur.name
    current = cur if cur.name == name else handbooks.load(name)
    parent = current.parent_version
    if parent is None:
        from skillchat.errors import HandbookError

        raise HandbookError(current.ref, "$.metadata.parent_version",
                            "it was not derived from another version; nothing to roll back to")
    ref = relearning.activate(cfg, f"{name}@{parent}")
    console.print(plain(f"Rolled back {current.ref} -> {ref} (in {relearning.config_path(cfg)}). "
                        f"`skillchat handbook use {current.ref}` undoes it."))
    return 0


def _ref(x: str, default_name: str) -> str:
    return f"{default_name}@{x}" if x.isdigit() else x


def history_table(name, versions, active):  # type: ignore[no-untyped-def]
    from rich.table import Table

    from skillchat import handbooks

    t = Table(title=f"versions of {name}", title_justify="left", box=None, pad_edge=False)
    for col, just in (("", "left"), ("version", "right"), ("from", "right"), ("created", "left"),
                      ("ratings", "right"), ("what changed", "left")):
        t.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for info in versions:
        try:
            hb = handbooks.load_file(info.path)
        except Exception as e:  # a broken version file is listed, not fatal
            t.add_row("", f"v{info.version}", "", "", "", plain(f"cannot read: {one_line(str(e))}", "red"))
            continue
        rec = next((h for h in reversed(hb.history) if isinstance(h, dict) and h.get("version") == hb.version
                    and h.get("kind") == "relearn"), None)
        if info.shipped:
            what = "shipped with skillchat"
        elif rec is None:
            what = "saved"
        else:
            what = version_note(rec)
        mark = "*" if active is not None and active.version == info.version else ""
        through = "" if hb.evidence_through is None else f" (#{hb.evidence_through})"
        t.add_row(mark, f"v{info.version}", "" if hb.parent_version is None else f"v{hb.parent_version}",
                  plain(hb.created), f"{hb.evidence.total():,.0f}" + through, plain(what))
    return t


def version_note(rec) -> str:  # type: ignore[no-untyped-def]
    """One line about a relearn record. The history is free-form metadata a file may hold anything
    in: only finite numbers are formatted as numbers, and odd shapes are skipped, never fatal."""
    import math

    def num(v):  # type: ignore[no-untyped-def]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return v if ok else None

    def names(v):  # type: ignore[no-untyped-def]
        return [str(x) for x in v] if isinstance(v, list) else []

    counts = rec.get("counts") if isinstance(rec.get("counts"), dict) else {}
    used = num(counts.get("used"))
    parts = [f"relearned from {'?' if used is None else f'{used:g}'} rated turns"]
    if num(counts.get("half_life_days")):
        parts.append(f"half-life {counts['half_life_days']:g} d")
    for c in rec.get("changes") if isinstance(rec.get("changes"), list) else []:
        if not isinstance(c, dict):
            continue
        skills, created = names(c.get("skills")), names(c.get("created"))
        if c.get("kind") == "merge" and len(skills) >= 2:
            parts.append(f"merged {skills[1]} into {skills[0]}")
        elif c.get("kind") == "split" and skills:
            parts.append(f"split {skills[0]} into {', '.join(created)}")
        elif c.get("kind") == "discover":
            parts.append(f"discovered {', '.join(created)}")
    ev = rec.get("evaluation")
    delta = ev.get("delta") if isinstance(ev, dict) else None
    if isinstance(delta, dict) and num(delta.get("value")) is not None:
        from skillchat.core.ope import signed

        parts.append(f"estimated satisfaction {signed(delta['value'])}")
    return "; ".join(parts)


def _through(rating_id: int | None) -> str:
    return "none" if rating_id is None else f"#{rating_id}"


def diff_renderable(d, a, b):  # type: ignore[no-untyped-def]
    from rich.console import Group, RenderableType
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = [Text.assemble((f"{d['from']} -> {d['to']}", "bold"),
                           f"  observations {d['observations_before']:,.1f} -> {d['observations_after']:,.1f}, "
                           f"ratings through {_through(d['evidence_through_before'])} -> "
                           f"{_through(d['evidence_through_after'])}")]
    for key, label in (("skills_added", "skills added"), ("skills_removed", "skills removed"),
                       ("skills_changed", "skills redefined"), ("agents_added", "agents added"),
                       ("agents_removed", "agents removed")):
        if d[key]:
            parts.append(plain(f"{label}: {', '.join(d[key])}"))
    if not any(d[k] for k in ("skills_added", "skills_removed", "skills_changed")):
        parts.append(Text("same skills", style="dim"))
    if d["evidence_by_skill"]:
        t = Table(title="rated observations by skill", title_justify="left", box=None, pad_edge=False)
        for col, just in (("skill", "left"), ("before", "right"), ("after", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for row in d["evidence_by_skill"][:20]:
            t.add_row(plain(row["skill"]), f"{row['before']:,.1f}", f"{row['after']:,.1f}")
        parts += [Text(""), t]
    if d["competence_moves"]:
        t = Table(title="biggest competence changes (posterior mean)", title_justify="left", box=None, pad_edge=False)
        for col, just in (("agent", "left"), ("skill", "left"), ("before", "right"), ("after", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for row in d["competence_moves"][:15]:
            t.add_row(plain(row["agent"]), plain(row["skill"]), f"{row['before']:.3f}", f"{row['after']:.3f}")
        parts += [Text(""), t]
    if d["costs"]:
        t = Table(title="cost per turn", title_justify="left", box=None, pad_edge=False)
        for col, just in (("agent", "left"), ("mode", "left"), ("before", "right"), ("after", "right")):
            t.add_column(col, justify=just)  # type: ignore[arg-type]
        for row in d["costs"][:15]:
            fmt = lambda x: "-" if x is None else f"${x:.5f}"  # noqa: E731
            t.add_row(plain(row["agent"]), plain(row["mode"]), fmt(row["usd_before"]), fmt(row["usd_after"]))
        parts += [Text(""), t]
    return Group(*parts)


def show_handbook(hb):  # type: ignore[no-untyped-def]
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from skillchat.core import posterior

    head = Text.assemble((f"{hb.name}@{hb.version}", "bold"), plain(f"  {hb.description}"))
    modes = Table(title="modes and skills", title_justify="left", box=None)
    modes.add_column("mode")
    modes.add_column("skills", overflow="fold")
    for m in hb.modes.values():
        modes.add_row(plain(m.name), plain(", ".join(hb.skills[s].name for s in hb.skills_in_mode(m.id))))
    agents = Table(title="agents (competence by mode: posterior mean over its skills)", title_justify="left", box=None)
    agents.add_column("agent")
    agents.add_column("model")
    for m in hb.modes.values():
        agents.add_column(plain(m.id), justify="right")
    for a in hb.agents.values():
        cells = []
        for m in hb.modes.values():
            sk = hb.skills_in_mode(m.id)
            cells.append(f"{sum(posterior(hb, a.id, s).mean for s in sk) / max(len(sk), 1):.2f}")
        agents.add_row(plain(a.name), plain(a.model), *cells)
    return Group(head, Text(""), modes, Text(""), agents)
