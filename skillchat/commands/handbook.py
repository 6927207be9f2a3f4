"""`skillchat handbook list | show NAME | validate FILE`."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="the handbooks you can use")
    show = sub.add_parser("show", help="modes, skills and agents of a handbook")
    show.add_argument("name", nargs="?", help="NAME, NAME@VERSION or a file (default: the active one)")
    val = sub.add_parser("validate", help="check a handbook file; exit status 2 when it is malformed")
    val.add_argument("file")


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
                      "shipped" if info.shipped else str(info.path.parent), info.description)
        console.print(t)
        return 0
    if args.action == "validate":
        hb = handbooks.load_file(args.file)
        print(f"{args.file}: ok ({hb.name}@{hb.version}: {len(hb.modes)} modes, {len(hb.skills)} skills, "
              f"{len(hb.agents)} agents, {hb.evidence.total():g} rated observations)")
        return 0
    hb = handbooks.load(args.name or config.load().handbook)
    console.print(show_handbook(hb))
    return 0


def show_handbook(hb):  # type: ignore[no-untyped-def]
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from skillchat.core import posterior

    head = Text.assemble((f"{hb.name}@{hb.version}", "bold"), f"  {hb.description}")
    modes = Table(title="modes and skills", title_justify="left", box=None)
    modes.add_column("mode")
    modes.add_column("skills", overflow="fold")
    for m in hb.modes.values():
        modes.add_row(m.name, ", ".join(hb.skills[s].name for s in hb.skills_in_mode(m.id)))
    agents = Table(title="agents (competence by mode: posterior mean over its skills)", title_justify="left", box=None)
    agents.add_column("agent")
    agents.add_column("model")
    for m in hb.modes.values():
        agents.add_column(m.id, justify="right")
    for a in hb.agents.values():
        cells = []
        for m in hb.modes.values():
            sk = hb.skills_in_mode(m.id)
            cells.append(f"{sum(posterior(hb, a.id, s).mean for s in sk) / max(len(sk), 1):.2f}")
        agents.add_row(a.name, a.model, *cells)
    return Group(head, Text(""), modes, Text(""), agents)
