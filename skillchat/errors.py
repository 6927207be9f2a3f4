"""The one exception root. The CLI turns any SkillchatError into a one-line message and exit 2."""

from __future__ import annotations

from skillchat.text_safety import shown


class SkillchatError(Exception):
    """An error the user can act on; its message is shown as is, without a traceback."""

    exit_code = 2


class HandbookError(SkillchatError):
    """A handbook file that cannot be read or does not follow the format."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source, self.path, self.problem = source, path, problem
        # The source is a name or path the user gave: it may be anything, and any length.
        where = f"{shown(source, 200)}: {path}: " if path else f"{shown(source, 200)}: "
        super().__init__(where + problem)


class ConfigError(SkillchatError):
    """A configuration file or setting that cannot be used."""


class StoreError(SkillchatError):
    """The trace database cannot be opened or written."""


class ProviderError(SkillchatError):
    """A model call failed; `kind` says how (timeout, rate_limit, auth, server, stream, other)."""

    def __init__(self, message: str, kind: str = "other", agent_id: str | None = None) -> None:
        self.kind, self.agent_id = kind, agent_id
        super().__init__(message)


class BudgetExceeded(SkillchatError):
    """A turn was refused before any call because it would break a hard budget."""


# --- what is wrong with a number ------------------------------------------------------------------
# Shared by every reader of numbers (config, handbooks, command-line flags), so they all say the
# same thing in the same words. Standard library only: the routing core uses it too.

INT64_MAX = 2**63 - 1  # the largest integer SQLite stores


def number_problem(value: object, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                   hi_open: bool = False, whole: bool = False) -> str | None:
    """None when `value` is a number within the bounds, else what is wrong with it, as in
    "expected a finite number ≥ 0 and ≤ 1e9, got nan". A boolean is not a number; NaN and the
    infinities are never accepted; integers of any size are compared exactly, never converted."""
    want = expected_number(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, whole=whole)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected {want}, got {_shown(value)}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"expected {want}, got {value}"  # nan, inf, -inf
        if whole:
            return f"expected {want}, got {show_number(value)}"
    if lo is not None and (value <= lo if lo_open else value < lo):
        return f"expected {want}, got {show_number(value)}"
    if hi is not None and (value >= hi if hi_open else value > hi):
        return f"expected {want}, got {show_number(value)}"
    return None


def expected_number(*, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                    hi_open: bool = False, whole: bool = False) -> str:
    """ "a finite number > 0 and ≤ 86400", "a whole number ≥ 1", ..."""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '≥'} {show_number(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '≤'} {show_number(hi)}")
    kind = "a whole number" if whole else "a finite number"
    return f"{kind} {' and '.join(parts)}".rstrip()


def show_number(x: int | float) -> str:
    """A number as a person writes it: 0.5, 86400, 1e9, 1e308, 1e-5, 9223372036854775807, or its size
    when it is too long to print."""
    if isinstance(x, int):
        if x.bit_length() > 130:  # past 40 digits: str() of a huge int is slow, and capped by Python
            return f"an integer of about {int(x.bit_length() * 0.30103) + 1} digits"
        return str(x)
    if x.is_integer() and abs(x) < 1e16:
        text = str(int(x))
        digits = text.lstrip("-")
        mantissa = digits.rstrip("0")
        zeros = len(digits) - len(mantissa)
        if zeros >= 6 and len(mantissa) <= 3:  # 1e9, 2.5e6
            frac = f".{mantissa[1:]}" if len(mantissa) > 1 else ""
            return f"{text[:len(text) - len(digits)]}{mantissa[0]}{frac}e{zeros + len(mantissa) - 1}"
        return text
    text = repr(x)  # the shortest text that reads back the same
    if "e" in text:
        mantissa, _, exp = text.partition("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def _shown(value: object) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    return {dict: "an object", list: "a list", type(None): "nothing (null)"}.get(type(value), type(value).__name__)
