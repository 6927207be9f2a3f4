import copy
import json
import re

import pytest

from skillchat import handbooks
from skillchat.core.handbook import from_dict, to_dict
from skillchat.core.handbook_format import MAX_NAME_CHARS
from skillchat.core.taxonomy import Settings
from skillchat.errors import HandbookError


@pytest.fixture
def tiny_data(tiny_path):
    return json.loads(tiny_path.read_text())


def test_round_trip_keeps_everything(tiny):
    tiny.record_outcome("big", {"code.debugging": 0.75, "code.python": 0.25}, 1.0)
    tiny.record_cost("big", "code", 100, 200, 0.01)
    again = from_dict(to_dict(tiny), "again")
    assert to_dict(again) == to_dict(tiny)
    assert again.evidence.skill("big", "code.debugging") == pytest.approx((0.75, 0.0))
    assert again.cost_stat("big", "code").n == 1


@pytest.mark.parametrize(
    "mutate, path, words",
    [
        (lambda d: d.update(schema_version=7), "$.schema_version", "unsupported schema version"),
        (lambda d: d["metadata"].pop("name"), "$.metadata.name", "is required"),
        (lambda d: d["metadata"].update(version="one"), "$.metadata.version",
         "expected a whole number ≥ 1 and ≤ 9223372036854775807, got a string"),
        (lambda d: d["skills"][3].update(mode="cod"), "$.skills[3].mode", "unknown mode 'cod'"),
        (lambda d: d["skills"][1].update(id="code.debugging"), "$.skills[1].id", "duplicate skill id"),
        (lambda d: d["skills"][0]["indicators"].append("re:(unclosed"), "$.skills[0].indicators[6]", "bad regular expression"),
        (lambda d: d["skills"][0]["indicators"].append(3), "$.skills[0].indicators[6]", "expected a string"),
        (lambda d: d["skills"][0].update(parent="nope"), "$.skills[0].parent", "unknown skill"),
        (lambda d: d["skills"][0].update(parent="code.debugging"), "$.skills[0].parent",
         "skill 'code.debugging' is its own ancestor (code.debugging -> code.debugging)"),
        (lambda d: (d["skills"][0].update(parent="code.python"), d["skills"][2].update(parent="math.calculus"),
                    d["skills"][3].update(parent="code.debugging")), "$.skills[0].parent",
         "its own ancestor (code.debugging -> code.python -> math.calculus -> code.debugging)"),
        (lambda d: (d["skills"][1].update(parent="code.python"), d["skills"][2].update(parent="code.python")),
         "$.skills[2].parent", "its own ancestor (code.python -> code.python)"),  # a loop below another skill
        (lambda d: d["agents"][0].update(model=""), "$.agents[0].model", "expected a model name, got an empty string"),
        (lambda d: d["agents"][0].update(model="  "), "$.agents[0].model", "expected a model name"),
        (lambda d: d["agents"][0].update(context_window=1e40), "$.agents[0].context_window",
         "expected a whole number ≥ 1 and ≤ 1000000000, got 1e40"),
        (lambda d: d["agents"][1]["prior"].update(mean=1.5), "$.agents[1].prior.mean",
         "expected a finite number > 0 and < 1, got 1.5"),
        (lambda d: d["agents"][1]["prior"]["modes"].update(poetry=0.5), "$.agents[1].prior.modes.poetry", "unknown mode"),
        (lambda d: d["agents"][0].update(context_window=0), "$.agents[0].context_window",
         "expected a whole number ≥ 1 and ≤ 1000000000, got 0"),
        (lambda d: d["agents"][0].pop("model"), "$.agents[0].model", "is required"),
        (lambda d: d["settings"].update(fallback_skill="x.y"), "$.settings.fallback_skill", "unknown skill"),
        (lambda d: d["settings"].update(challenge_z=-1), "$.settings.challenge_z",
         "expected a finite number ≥ 0 and ≤ 10, got -1"),
        (lambda d: d["settings"].update(quality_floor=float("nan")), "$.settings.quality_floor",
         "expected a finite number ≥ 0 and ≤ 1, got nan"),
        (lambda d: d["settings"].update(quality_floor=1.5), "$.settings.quality_floor",
         "expected a finite number ≥ 0 and ≤ 1, got 1.5"),
        (lambda d: d["settings"].update(exploration_floor=0.6, quality_floor=0.6), "$.settings", "at most 1"),
        (lambda d: d.update(competence={"ghost": {}}), "$.competence.ghost", "unknown agent"),
        (lambda d: d.update(competence={"big": {"code.debugging": {"successes": -1}}}),
         "$.competence.big.code.debugging.successes", "expected a finite number ≥ 0 and ≤ 1e9, got -1"),
        (lambda d: d.update(costs={"big": {"nomode": {}}}), "$.costs.big.nomode", "unknown mode"),
        (lambda d: d.update(modes=[]), "$.modes", "at least one mode"),
        (lambda d: d.update(agents="all"), "$.agents", "expected a list"),
        # the provenance links relearning follows; the rest of provenance is free-form
        (lambda d: d["skills"][1].update(provenance={"merged_from": "code.old"}), "$.skills[1].provenance.merged_from",
         "expected a list, got a string"),
        (lambda d: d["skills"][1].update(provenance={"split_into": [3]}), "$.skills[1].provenance.split_into[0]",
         "expected a string, got a number"),
        (lambda d: d["skills"][1].update(provenance={"discovered_from": ["chat.general"]}),
         "$.skills[1].provenance.discovered_from", "expected a string, got a list"),
        (lambda d: d["skills"][1].update(provenance={"discovered_from": "chat.general", "min_similarity": "low"}),
         "$.skills[1].provenance.min_similarity", "expected a finite number ≥ 0 and ≤ 1, got a string"),
        (lambda d: d["skills"][1].update(provenance={"min_similarity": float("nan")}),
         "$.skills[1].provenance.min_similarity", "got nan"),
        (lambda d: d["skills"][1].update(provenance={"merged_discoveries": 5}), "$.skills[1].provenance.merged_discoveries",
         "expected a list, got a number"),
        (lambda d: d["skills"][1].update(provenance={"merged_discoveries": ["bake"]}),
         "$.skills[1].provenance.merged_discoveries[0]", "expected an object, got a string"),
        (lambda d: d["skills"][1].update(provenance={"merged_discoveries": [{"min_similarity": 0.2}]}),
         "$.skills[1].provenance.merged_discoveries[0].signature", "expected an object, got null"),
        (lambda d: d["skills"][1].update(provenance={"merged_discoveries": [{"signature": {"bake": "x"}}]}),
         "$.skills[1].provenance.merged_discoveries[0].signature.bake", "got a string"),
        (lambda d: d["skills"][1].update(provenance={"merged_discoveries": [{"signature": {"bake": 1},
                                                                             "min_similarity": 2}]}),
         "$.skills[1].provenance.merged_discoveries[0].min_similarity", "≤ 1, got 2"),
    ],
)
def test_validation_names_source_and_json_path(tiny_data, mutate, path, words):
    data = copy.deepcopy(tiny_data)
    mutate(data)
    with pytest.raises(HandbookError) as err:
        from_dict(data, source="broken.json")
    assert err.value.path == path
    assert words in err.value.problem
    assert str(err.value).startswith(f"broken.json: {path}: ")


def test_provenance_beyond_the_links_relearning_follows_is_free_form(tiny_data):
    data = copy.deepcopy(tiny_data)
    prov = {"rationale": 3, "evidence": {"anything": [None]}, "changes": "x", "merged_from": [], "split_into": [],
            "discovered_from": "chat.general", "min_similarity": 0,
            "merged_discoveries": [{"signature": {}}, {"signature": {"bake": 0.0, "oven": 0.5}, "min_similarity": 0},
                                   {"signature": {"bread": 1.0}, "min_similarity": 1}]}
    data["skills"][1]["provenance"] = prov
    assert from_dict(data).skills[data["skills"][1]["id"]].provenance == prov


def test_bad_json_names_line_and_column(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{"schema_version": 1,\n  "metadata": }')
    with pytest.raises(HandbookError, match=r"bad.json: not valid JSON: .* line 2, column 15"):
        handbooks.load_file(f)


@pytest.mark.parametrize("name", ["general", "coding"])
def test_shipped_handbooks_are_valid_and_sourced(name):
    hb = handbooks.load(name)
    assert hb.name == name
    assert len(hb.modes) >= 6
    assert hb.settings.fallback_skill in hb.skills
    for a in hb.agents.values():
        assert a.prior.source.strip(), f"{a.id} prior has no source"
    for s in hb.skills.values():
        assert s.indicators and s.examples, s.id
    assert hb.evidence.total() == 0


def test_general_handbook_covers_everyday_chat():
    hb = handbooks.load("general")
    assert len(hb.skills) >= 40
    assert {"code", "math", "writing", "chat"} <= set(hb.modes)
    models = " ".join(a.model for a in hb.agents.values())
    for vendor in ("gpt", "claude", "gemini", "ollama/"):
        assert vendor in models


def test_shipped_handbooks_differ_in_shape():
    general, coding = handbooks.load("general"), handbooks.load("coding")
    assert set(general.modes) != set(coding.modes)
    assert set(general.skills) != set(coding.skills)


def test_versions_are_saved_once_and_resolved(tiny):
    tiny.name = "mine"
    p1 = handbooks.save_version(tiny)
    assert p1.name == "v1.json"
    with pytest.raises(HandbookError, match="already exists"):
        handbooks.save_version(tiny)
    nxt = tiny.structure_copy(version=2, parent_version=1)
    handbooks.save_version(nxt)
    assert handbooks.load("mine").version == 2
    assert handbooks.load("mine@1").version == 1
    with pytest.raises(HandbookError, match="no version 9"):
        handbooks.load("mine@9")
    with pytest.raises(HandbookError, match="no handbook named 'nope'"):
        handbooks.load("nope")


def test_a_handbook_that_leaves_out_every_optional_field_loads_with_its_defaults():
    # Only what the format requires; every default a hand-written handbook relies on is then visible.
    data = {
        "schema_version": 1,
        "metadata": {"name": "min", "version": 1},
        "modes": [{"id": "chat"}, {"id": "code"}],
        "skills": [{"id": "chat.general", "mode": "chat"}, {"id": "code.any", "mode": "code"}],
        "agents": [{"id": "a", "model": "m", "context_window": 1000, "prior": {"mean": 0.5}}],
        "competence": {"a": {"chat.general": {"successes": 2}, "code.any": {"failures": 3}}},
        "costs": {"a": {"chat": {"n": 1}, "code": {"usd": 0.5, "prompt_tokens": 7, "completion_tokens": 9}}},
    }
    out = to_dict(from_dict(data, "min.json"))
    defaults = Settings()
    assert out["settings"] == {"fallback_skill": "chat.general", "prior_strength": defaults.prior_strength,
                               "mode_strength": defaults.mode_strength, "skill_strength": defaults.skill_strength,
                               "exploration_floor": defaults.exploration_floor,
                               "quality_floor": defaults.quality_floor, "challenge_z": defaults.challenge_z}
    assert out["metadata"]["parent_version"] is None
    assert out["metadata"]["description"] == ""
    assert out["modes"][0] == {"id": "chat", "name": "chat", "description": "", "completion_tokens": 400}
    assert out["skills"][0] == {"id": "chat.general", "mode": "chat", "name": "chat.general", "description": "",
                                "indicators": [], "examples": [], "parent": None}
    assert out["agents"][0]["name"] == "a"
    assert out["agents"][0]["price"] is None
    assert out["agents"][0]["prior"] == {"mean": 0.5, "source": "", "modes": {}, "skills": {}}
    assert out["competence"]["a"] == {"chat.general": {"successes": 2.0, "failures": 0.0},
                                      "code.any": {"successes": 0.0, "failures": 3.0}}
    assert out["costs"]["a"] == {
        "chat": {"n": 1.0, "prompt_tokens": 0.0, "completion_tokens": 0.0, "usd": 0.0},
        "code": {"n": 0.0, "prompt_tokens": 7.0, "completion_tokens": 9.0, "usd": 0.5},
    }


def test_prices_are_written_per_million_tokens_as_they_were_read(tiny):
    # A round trip alone cannot tell a wrong unit: written wrong and read back wrong agree.
    assert to_dict(tiny)["agents"][0]["price"] == {"input_per_mtok": 10, "output_per_mtok": 30}
    assert tiny.agents["big"].price.input == pytest.approx(10e-6)
    data = to_dict(tiny)
    data["agents"][1]["price"] = {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
    assert to_dict(from_dict(data, "p.json"))["agents"][1]["price"] == {"input_per_mtok": 0.15, "output_per_mtok": 0.6}


def test_a_name_may_be_exactly_as_long_as_its_limit(tiny_data):
    data = copy.deepcopy(tiny_data)
    data["skills"][0]["name"] = "n" * MAX_NAME_CHARS
    assert from_dict(data, "ok.json").skills["code.debugging"].name == "n" * MAX_NAME_CHARS
    data["skills"][0]["name"] += "n"
    with pytest.raises(HandbookError, match=f"is {MAX_NAME_CHARS + 1:,} characters long; at most {MAX_NAME_CHARS:,}"):
        from_dict(data, "long.json")


def test_a_nullable_number_says_null_is_allowed_too(tiny_data):
    data = copy.deepcopy(tiny_data)
    data["metadata"]["parent_version"] = "one"
    with pytest.raises(HandbookError) as err:
        from_dict(data, "b.json")
    assert err.value.path == "$.metadata.parent_version"
    assert err.value.problem == "expected a whole number ≥ 1 and ≤ 9223372036854775807 or null, got a string"


def test_a_very_long_path_in_a_message_keeps_its_head_and_tail(tiny_data):
    # An unknown skill id of 1,000 characters must not make a 1,000-character message, but both
    # ends of the path stay readable: where it is, and how the id ends.
    data = copy.deepcopy(tiny_data)
    sid = "s" * 500 + "t" * 500
    data["competence"] = {"big": {sid: {}}}
    with pytest.raises(HandbookError) as err:
        from_dict(data, "b.json")
    full = f"$.competence.big.{sid}"
    assert err.value.path == f"{full[:200]} […] {full[-75:]}"
    assert err.value.problem.startswith("unknown skill")
    assert len(err.value.problem) <= 1000 + len(" […] ")


def test_settings_a_handbook_leaves_out_are_the_defaults_its_format_documents(repo):
    # docs/handbook-format.md shows every setting with its default; a handbook without them routes by these.
    doc = (repo / "docs" / "handbook-format.md").read_text()
    block = doc[doc.index('"settings": {'):]
    block = block[:block.index('"modes": [')]
    documented = {k: json.loads(v) for k, v in re.findall(r'"(\w+)":\s*("[^"]*"|[0-9.]+)', block)}
    assert documented == {"fallback_skill": "chat.general", "prior_strength": 4.0, "mode_strength": 6.0,
                          "skill_strength": 4.0, "exploration_floor": 0.03, "quality_floor": 0.15, "challenge_z": 1.0}
    defaults = Settings()
    assert {k: getattr(defaults, k) for k in documented} == documented
