"""Finding, reading and saving handbooks: shipped ones and the user's own versions.

Layout of the user's handbook dir: `<name>/v<version>.json`, one file per version, never
overwritten. A user handbook shadows a shipped one of the same name; `name@N` picks a version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skillchat import atomic, paths, reading
from skillchat.core.handbook import Handbook, from_dict, to_dict
from skillchat.core.handbook_format import NAME_RE
from skillchat.errors import HandbookError
from skillchat.text_safety import os_reason, shown

# ASCII digits only (\d would take any script's), and few enough for SQLite's integers.
_VERSION_FILE = re.compile(r"^v([0-9]{1,18})\.json$")
# A handbook's name is a folder name: file systems take up to 255 bytes.
MAX_NAME = 200


@dataclass(frozen=True)
class HandbookInfo:
    name: str
    version: int
    path: Path
    shipped: bool
    description: str = ""
    # When the version was made: the shipped file's own date; for a saved version, when its file was
    # written (version files are never rewritten), read from the folder rather than by parsing each file.
    created: str = ""


def load_file(path: Path | str) -> Handbook:
    path = Path(path)
    try:
        text = reading.read_text(path, reading.MAX_HANDBOOK_BYTES, "a handbook")
    except FileNotFoundError:
        raise HandbookError(str(path), "", "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise HandbookError(str(path), "", f"cannot read it ({os_reason(e)})") from None
    except ValueError:  # a NUL in the name
        raise HandbookError(str(path), "", "cannot read it (a file name cannot hold a NUL character)") from None
    # json's parser (and the checks after it) recurse once per level: 200,000 '[' exhaust the stack.
    too_deep = HandbookError(str(path), "", "nested too deeply to be a handbook")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HandbookError(str(path), "", f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except ValueError:  # int() refuses to read more than 4300 digits
        raise HandbookError(str(path), "", "not valid JSON: a number too long to read") from None
    except RecursionError:
        raise too_deep from None
    try:
        return from_dict(data, source=str(path))
    except RecursionError:
        raise too_deep from None


def _user_versions(name: str) -> dict[int, Path]:
    out: dict[int, Path] = {}
    # Only a valid name can have been saved, so no other is looked for on disk, where a long one
    # is "File name too long" and "." or ".." are other folders.
    if not (NAME_RE.match(name) and len(name) <= MAX_NAME):
        return out
    d = paths.user_handbooks_dir() / name
    if d.is_dir():
        for f in d.iterdir():
            m = _VERSION_FILE.match(f.name)
            if m:
                out[int(m.group(1))] = f
    return out


def _written_at(path: Path) -> str:
    try:
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except (OSError, ValueError, OverflowError):  # gone since the folder was listed, or a clock gone wrong
        return ""
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _shipped() -> dict[str, Path]:
    d = paths.shipped_handbooks_dir()
    return {f.stem: f for f in sorted(d.glob("*.json"))} if d.is_dir() else {}


def versions(name: str) -> list[HandbookInfo]:
    """Every version of a handbook that exists, oldest first (the shipped one counts)."""
    out: dict[int, HandbookInfo] = {}
    shipped = _shipped().get(name)
    if shipped is not None:
        hb = load_file(shipped)
        out[hb.version] = HandbookInfo(name, hb.version, shipped, True, hb.description, hb.created)
    for v, p in _user_versions(name).items():
        out[v] = HandbookInfo(name, v, p, False, created=_written_at(p))
    return [out[v] for v in sorted(out)]


def list_handbooks() -> list[HandbookInfo]:
    """The newest version of every known handbook."""
    names = set(_shipped()) | {p.name for p in paths.user_handbooks_dir().iterdir() if p.is_dir() and _user_versions(p.name)}
    result = []
    for name in sorted(names):
        vs = versions(name)
        if vs:
            result.append(vs[-1])
    return result


def display_names() -> dict[str, str]:
    """id -> name of the agents, modes and skills of every known handbook (its newest version).

    Spend reports cover turns routed with any handbook, not only the active one: a coding turn's
    `implement.rust` is shown as "Rust". The files are read as plain JSON, your newest versions
    first: loading and checking whole handbooks would slow `skillchat spend` down many times over.
    A file that cannot be read only costs its names."""
    files: list[Path] = []
    user_dir = paths.user_handbooks_dir()
    for d in sorted(user_dir.iterdir()) if user_dir.is_dir() else ():
        vs = _user_versions(d.name) if d.is_dir() else {}
        if vs:
            files.append(vs[max(vs)])
    files += _shipped().values()
    names: dict[str, str] = {}
    for path in files:
        try:
            data = json.loads(reading.read_text(path, reading.MAX_HANDBOOK_BYTES, "a handbook"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        if not isinstance(data, dict):
            continue
        for section in ("agents", "modes", "skills"):
            items = data.get(section)
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("name"), str):
                    names.setdefault(item["id"], item["name"])
    return names


def resolve(ref: str) -> Path:
    """`name`, `name@version`, or a path to a JSON file."""
    if ref.endswith(".json") or "/" in ref or "\\" in ref:
        return Path(ref)
    name, _, ver = ref.partition("@")
    vs = versions(name)
    if not vs:
        known = ", ".join(i.name for i in list_handbooks()) or "none"
        raise HandbookError(ref, "", f"no handbook named {shown(repr(name))} (known: {known})")
    if not ver:
        return vs[-1].path
    if not (ver.isascii() and ver.isdigit() and len(ver) <= 18):
        raise HandbookError(ref, "", f"version must be a whole number, got {shown(repr(ver))}")
    for info in vs:
        if info.version == int(ver):
            return info.path
    raise HandbookError(ref, "", f"no version {ver} of {name!r} (have {', '.join(str(i.version) for i in vs)})")


def active_ref(configured: str, store: Any | None = None) -> str:
    """The handbook the app routes with: its last switch or activation in the trace store, unless
    the config has named another one since (or that version was deleted)."""
    if store is not None:
        ev = store.last_handbook_event(("switch", "activate"))
        if ev and ev["detail"].get("config_handbook") == configured:
            ref = ev["detail"].get("ref") or f"{ev['handbook']}@{ev['version']}"
            try:
                resolve(ref)
                return ref
            except HandbookError:
                pass
    return configured


def load(ref: str) -> Handbook:
    return load_file(resolve(ref))


def save_version(hb: Handbook) -> Path:
    """Write a handbook as a new version file; refuses to overwrite an existing version."""
    if len(hb.name) > MAX_NAME:
        raise HandbookError(hb.ref, "$.metadata.name", f"a name longer than {MAX_NAME} characters cannot be saved")
    path = paths.user_handbooks_dir() / hb.name / f"v{hb.version}.json"
    if path.exists() or any(i.version == hb.version for i in versions(hb.name)):
        raise HandbookError(str(path), "$.metadata.version", f"version {hb.version} of {hb.name!r} already exists")
    try:
        atomic.write_text(path, json.dumps(to_dict(hb), indent=1, ensure_ascii=False) + "\n")
    except OSError as e:
        raise HandbookError(str(path), "", f"cannot write it ({os_reason(e)})") from None
    return path


def next_version(name: str) -> int:
    vs = versions(name)
    return (vs[-1].version + 1) if vs else 1
