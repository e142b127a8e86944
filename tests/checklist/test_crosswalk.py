"""The crosswalk seen from either checklist, and did-you-mean for checklist names."""

from __future__ import annotations

import pytest

from medval._errors import SpecError
from medval.checklist import crosswalk, load_checklist, parse_answers


def test_tripod_items_map_to_claim_items() -> None:
    walk = crosswalk("tripod-ai-2024")
    assert walk is not None
    assert walk.checklist.id == "tripod-ai-2024" and walk.other.id == "claim-2024"
    assert walk.other.short_title == "CLAIM 2024"
    assert [(c.number, c.relation) for c in walk.of("8a")] == [("14", "part"), ("15", "part")]
    assert [c.number for c in walk.of("12c")] == ["22", "25", "26"]
    assert [(c.number, c.relation) for c in walk.of("23a")] == [("37", "same"), ("38", "part")]
    assert walk.of("3c") == ()  # no confirmed counterpart
    assert walk.of("8a")[0].topic == load_checklist("claim-2024").item(14).topic


def test_claim_items_map_to_tripod_items() -> None:
    walk = crosswalk("claim-2024")
    assert walk is not None and walk.other.short_title == "TRIPOD+AI"
    assert [c.number for c in walk.of(43)] == ["18e", "18f", "22"]
    assert [(c.number, c.relation) for c in walk.of(3)] == [("3a", "same"), ("3b", "same")]
    assert walk.of(5) == ()


def test_the_two_directions_agree() -> None:
    claim, tripod = crosswalk("claim-2024"), crosswalk("tripod-ai-2024")
    assert claim is not None and tripod is not None
    forward = {(n, c.number, c.relation) for n, cs in claim.items.items() for c in cs}
    backward = {(c.number, n, c.relation) for n, cs in tripod.items.items() for c in cs}
    assert forward == backward and len(forward) > 25


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("tripod", "tripod-ai-2024"), ("TRIPOD+AI", "tripod-ai-2024"), ("claim2024", "claim-2024")],
)
def test_unknown_checklist_suggests_the_closest(name: str, suggestion: str) -> None:
    with pytest.raises(SpecError, match=rf"did you mean '{suggestion}'\? valid: \['claim-2024'"):
        load_checklist(name)
    with pytest.raises(SpecError, match=r"did you mean"):
        crosswalk(name)


def test_answers_for_another_checklist_say_how_to_fix_it() -> None:
    with pytest.raises(SpecError) as info:
        parse_answers({"checklist": "claim-2024", "items": {}}, "tripod-ai-2024", source="a.yaml")
    message = str(info.value)
    assert message.startswith("a.yaml: these answers are for 'claim-2024'")
    assert "but the checklist is 'tripod-ai-2024'" in message
    assert "`--checklist claim-2024`" in message
    assert "`medval checklist init --checklist tripod-ai-2024`" in message


def test_answers_naming_an_unknown_checklist_suggest_the_closest() -> None:
    with pytest.raises(SpecError, match=r"a\.yaml: 'checklist': unknown checklist 'tripod-ai'; "):
        parse_answers({"checklist": "tripod-ai", "items": {}}, source="a.yaml")
