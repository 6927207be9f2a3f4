"""Change: a taxonomy change as relearn reports it and a handbook's history keeps it (plain JSON, read back)."""

from __future__ import annotations

import json

from skillchat.core.changes import Change, plain


def test_a_change_round_trips_through_its_json_record():
    c = Change("split", ("code.debugging",), ("code.debugging.keyerror", "code.debugging.segfault"), (),
               "mid differs", {"agent": "mid", "sizes": [150, 150], "z": 2.5}, retagged=300)
    d = c.to_dict()
    assert d == {"kind": "split", "skills": ["code.debugging"],
                 "created": ["code.debugging.keyerror", "code.debugging.segfault"], "removed": [],
                 "rationale": "mid differs", "evidence": {"agent": "mid", "sizes": [150, 150], "z": 2.5},
                 "retagged": 300}
    assert Change.from_dict(json.loads(json.dumps(d))) == c


def test_a_change_counts_no_retagged_turns_unless_told():
    # Callers build changes without counts (tests of relearning's --auto, for one), and history records
    # written before the count existed have no "retagged" field: both read as zero turns.
    assert Change("merge", ("a", "b")).retagged == 0
    old = Change.from_dict({"kind": "merge", "skills": ["a", "b"], "removed": ["b"]})
    assert old == Change("merge", ("a", "b"), (), ("b",))


def test_plain_rounds_floats_to_six_digits_and_turns_tuples_into_lists():
    assert plain(0.123456789) == 0.123457
    assert plain({"rates": (0.1000004, 0.2), 3: {"n": [1, 2.0000004]}, "agent": "mid", "ok": True, "none": None}) == {
        "rates": [0.1, 0.2], "3": {"n": [1, 2.0]}, "agent": "mid", "ok": True, "none": None}
