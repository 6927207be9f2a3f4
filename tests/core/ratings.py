"""Many ratings at once, for tests that build up a record."""


def rate(hb, agent, skill, good, bad):
    """`good` thumbs up and `bad` thumbs down for `agent` on one skill."""
    for _ in range(good):
        hb.record_outcome(agent, {skill: 1.0}, 1.0)
    for _ in range(bad):
        hb.record_outcome(agent, {skill: 1.0}, 0.0)
