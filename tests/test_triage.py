"""311 is not 911: emergency wording is noticed, the policy decides what happens."""

from __future__ import annotations

import pickle
import warnings

import httpx
import pytest

import civic311
import civic311.triage as triage
from civic311.errors import InvalidRequestError
from civic311.triage import (
    EmergencySuspectedError,
    EmergencyWarning,
    check,
    emergency_signals,
)

from helpers import Both

#: Descriptions that read like an emergency, and the category each must raise.
POSITIVE: list[tuple[str, str]] = [
    ("There is a fire in the building next door", "fire"),
    ("House FIRE on Elm St", "fire"),
    ("Two fires burning behind the warehouse", "fire"),
    ("flames coming out of the windows", "fire"),
    ("Thick black smoke pouring from the roof", "fire"),
    ("Brush fire spreading toward the houses", "fire"),
    ("wildfire approaching homes on the ridge", "fire"),
    ("a car is on fire in the lot", "fire"),
    ("strong burning smell from the outlet", "fire"),
    ("I smell gas near the meter", "gas_leak"),
    ("Strong gas smell in the hallway", "gas_leak"),
    ("There's a gas leak at the corner", "gas_leak"),
    ("pipe leaking gas by the school", "gas_leak"),
    ("it smells like rotten eggs outside", "gas_leak"),
    ("gas line was hit by the construction crew", "gas_leak"),
    ("Our CO detector is going off", "carbon_monoxide"),
    ("carbon monoxide alarm beeping upstairs", "carbon_monoxide"),
    ("A man is hurt and lying in the road", "injury"),
    ("someone got hurt when the sign fell", "injury"),
    ("Injured cyclist at 5th and Main", "injury"),
    ("He is bleeding from his head", "injury"),
    ("my friend was seriously injured", "injury"),
    ("A woman is unconscious on the sidewalk", "medical"),
    ("my neighbor is not breathing", "medical"),
    ("guy passed out on the bench", "medical"),
    ("someone collapsed at the bus stop", "medical"),
    ("person having a seizure by the fountain", "medical"),
    ("He\u2019s having a heart attack", "medical"),
    ("she can't breathe", "medical"),
    ("someone overdosed in the park", "overdose"),
    ("looks like an overdose in the alley", "overdose"),
    ("downed power line across the road", "power_line"),
    ("Power lines are down after the storm", "power_line"),
    ("live wire hanging over the sidewalk", "power_line"),
    ("wires sparking on the pole", "power_line"),
    ("electrical wire on the ground by the bus stop", "power_line"),
    ("Car crash at the intersection", "crash"),
    ("there was a head-on collision", "crash"),
    ("a pedestrian was hit by a car", "crash"),
    ("hit-and-run just happened here", "crash"),
    ("truck flipped over on the ramp", "crash"),
    ("van crashed into the storefront", "crash"),
    ("child drowning in the pond", "drowning"),
    ("a dog fell through the ice", "drowning"),
    ("a man with a gun in the park", "weapon"),
    ("shots fired near the school", "weapon"),
    ("someone was stabbed outside the bar", "weapon"),
    ("a guy waving a knife at people", "weapon"),
    ("there was a shooting on 3rd street", "weapon"),
    ("Somebody is being attacked", "violence"),
    ("domestic violence next door right now", "violence"),
    ("there was an explosion at the plant", "explosion"),
    ("transformer exploded", "explosion"),
    ("suspicious package at the station entrance", "explosion"),
    ("kids trapped in the elevator", "trapped"),
    ("person trapped in a car", "trapped"),
    ("we are stuck in the elevator", "trapped"),
    ("water is pouring into my basement", "flooding"),
    ("our house is flooding", "flooding"),
    ("sewage backing up into the basement", "flooding"),
    ("This is an emergency", "emergency"),
]

#: Descriptions that must not be flagged: the judgement calls of the module docstring.
NEGATIVE: list[str] = [
    "Fire hydrant is leaking",
    "fire hydrants painted the wrong color",
    "Fireworks noise complaint every night",
    "fire works going off all night",
    "fireworks exploding all night",
    "Car parked in the fire lane",
    "Overgrown lot is a fire hazard",
    "Fire station sirens too loud",
    "fire ants in the playground",
    "Please fire the contractor who paved this road",
    "Someone should fire whoever approved this",
    "illegal bonfire in the park",
    "Smoke detector chirping in the community center",
    "Neighbor's cigarette smoke comes through the vent",
    "People smoke in the stairwell",
    "BBQ smoke drifting from the park",
    "chimney smoke from the neighbor",
    "Gas station sign is broken",
    "Gasoline smell near the dumpster",
    "pothole, someone could get hurt",
    "Fix this before someone gets hurt",
    "people are getting hurt on this sidewalk",
    "Risk of injury on this broken sidewalk",
    "There are so many car accidents at this corner, need a stop sign",
    "Stop sign was knocked down, hit by a car",
    "Crash barrier damaged on the bridge",
    "Street flooding at Main and 5th",
    "Flooded intersection after rain",
    "Nail gun noise from construction at 6am",
    "Kids shooting hoops late at night",
    "Streetlight is shot, totally out",
    "Water shooting out of the hydrant",
    "Power lines down the street are humming",
    "Lane lines down Main Street are faded",
    "downtown parking meter broken",
    "Leaves choking the storm drain",
    "They passed out flyers on every car",
    "This is not an emergency, just a pothole",
    "the street is drowning in litter",
    "Water trapped in the underpass",
    "Trail blaze markers are missing",
    "Streetlight out on Oak Ave",
    "Graffiti on the wall",
    "Missed trash pickup on Tuesday",
    "Dead raccoon in the road",
    "",
]


@pytest.mark.parametrize(("text", "category"), POSITIVE)
def test_emergency_wording_is_flagged(text: str, category: str) -> None:
    """Each emergency description raises a signal of the expected category."""
    categories = {s.category for s in emergency_signals(text)}
    assert category in categories


@pytest.mark.parametrize("text", NEGATIVE)
def test_ordinary_311_wording_is_not_flagged(text: str) -> None:
    """Everyday 311 descriptions (hydrants, fireworks, hypothetical harm) raise no signal."""
    assert emergency_signals(text) == []


def test_the_phrase_table_is_large_enough() -> None:
    """The curated table keeps at least 40 phrases, positive and negative together."""
    assert len(POSITIVE) + len(NEGATIVE) >= 40
    assert len(POSITIVE) >= 20
    assert len(NEGATIVE) >= 20


def test_signal_carries_category_text_and_span_of_the_original() -> None:
    """A Signal's text is the original wording and its span slices the description."""
    text = "Hi. There\u2019s SMOKE and a Gas Leak here"
    signals = emergency_signals(text)
    assert [s.category for s in signals] == ["fire", "gas_leak"]
    for signal in signals:
        start, end = signal.span
        assert text[start:end] == signal.text
    assert signals[1].text == "Gas Leak"


def test_signals_come_in_order_and_contained_matches_are_dropped() -> None:
    """Signals are ordered by position; a match inside a longer one of its category is not
    repeated, while different categories may overlap."""
    signals = emergency_signals("car crash, then the transformer exploded")
    assert [s.category for s in signals] == ["crash", "power_line", "explosion"]
    starts = [s.span[0] for s in signals]
    assert starts == sorted(starts)
    assert len(emergency_signals("a head-on collision")) == 1


def test_plurals_and_inflections_are_tolerated() -> None:
    """Simple plurals and inflections match: fires, flames, bleeding, drowned, overdosing."""
    for text in ("fires", "flame", "bleeds", "drowned", "overdosing", "stabbing", "explosions"):
        assert emergency_signals(text), text


def test_words_inside_other_words_do_not_match() -> None:
    """Word boundaries hold: 'campfire', 'gasket', 'firefly' and 'stable' are not signals."""
    assert emergency_signals("campfire gasket firefly stable overdoser") == []


def test_warn_policy_warns_naming_categories_and_911() -> None:
    """'warn' emits an EmergencyWarning naming the categories and advising 911, and returns."""
    with pytest.warns(EmergencyWarning, match="911") as caught:
        signals = check("gas leak and someone is unconscious", "warn")
    assert {s.category for s in signals} == {"gas_leak", "medical"}
    warning = caught[0].message
    assert isinstance(warning, EmergencyWarning)
    assert warning.signals == signals
    assert "a gas leak" in str(warning)
    assert "a medical emergency" in str(warning)


def test_warn_is_the_default_policy() -> None:
    """check() without a policy warns."""
    with pytest.warns(EmergencyWarning):
        check("house fire")


def test_refuse_policy_raises_an_invalid_request_error_on_description() -> None:
    """'refuse' raises EmergencySuspectedError (an InvalidRequestError for 'description')."""
    with pytest.raises(EmergencySuspectedError) as caught:
        check("downed power line and a car crash", "refuse")
    error = caught.value
    assert isinstance(error, InvalidRequestError)
    assert error.field == "description"
    assert error.categories == ["power_line", "crash"]
    assert "a downed or live power line" in str(error)
    assert "911" in str(error)


def test_ignore_policy_returns_signals_silently() -> None:
    """'ignore' returns the signals and warns about nothing (warnings are errors here)."""
    signals = check("someone was stabbed", "ignore")
    assert [s.category for s in signals] == ["violence", "weapon"]  # "was stabbed" starts first


@pytest.mark.parametrize("policy", ["warn", "refuse", "ignore"])
def test_no_signal_means_no_warning_and_no_error(policy: triage.EmergencyPolicy) -> None:
    """An ordinary description passes every policy untouched."""
    assert check("Pothole on Main Street near the library", policy) == []


@pytest.mark.parametrize("policy", ["warn", "refuse", "ignore"])
def test_a_missing_description_has_no_signals(policy: triage.EmergencyPolicy) -> None:
    """A request without a description (None) passes every policy."""
    assert check(None, policy) == []


def test_unknown_policy_and_non_text_are_refused_naming_the_argument() -> None:
    """A bad policy names 'policy'; a non-string description names 'text'."""
    with pytest.raises(InvalidRequestError) as bad_policy:
        check("fire", "shout")  # type: ignore[arg-type]
    assert bad_policy.value.field == "policy"
    with pytest.raises(InvalidRequestError) as bad_text:
        emergency_signals(b"fire")  # type: ignore[arg-type]
    assert bad_text.value.field == "text"


def test_warning_points_at_the_caller() -> None:
    """The warning's location is the code that called check(), not civic311."""
    with pytest.warns(EmergencyWarning) as caught:
        check("gas leak")
    assert caught[0].filename == __file__


def test_warning_class_also_builds_from_a_message() -> None:
    """warnings.warn(message, EmergencyWarning) works like any warning category."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("call 911", EmergencyWarning, stacklevel=1)
    assert isinstance(caught[0].message, EmergencyWarning)
    assert caught[0].message.signals == []


def test_refusal_survives_pickling() -> None:
    """EmergencySuspectedError crosses process pools intact."""
    with pytest.raises(EmergencySuspectedError) as caught:
        check("Fire! smoke pouring out of the house", policy="refuse")
    error = caught.value
    assert error.signals
    assert error.categories == ["fire"]
    again = pickle.loads(pickle.dumps(error))
    assert again.signals == error.signals
    assert str(again) == str(error)


def test_module_says_it_is_a_heuristic_pointing_to_911() -> None:
    """The module docstring says plainly: a heuristic, 911, never a silent block."""
    doc = triage.__doc__ or ""
    assert "heuristic, not a guarantee" in doc
    assert "911" in doc
    assert "never a reason to drop or block a report" in doc


# --- opt-in: the client does not triage --------------------------------------------------------

FIRE = civic311.NewRequest(
    service_code="001", address_id="1", description="Smoke and flames coming from a house"
)


def _filed(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[{"service_request_id": "101"}])


def test_the_client_files_emergency_wording_without_a_check(both: Both) -> None:
    """submit reads no description for emergencies: no warning (warnings are errors here), sent."""
    receipt = both(_filed, "submit", FIRE)
    assert receipt.service_request_id == "101"


def test_triage_is_a_function_called_before_submit(both: Both) -> None:
    """Opting in is one call: check() warns or refuses before anything is sent."""
    seen: list[httpx.Request] = []

    def city(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _filed(request)

    def file_unless_emergency(request: civic311.NewRequest) -> civic311.Receipt:
        check(request.description, "refuse")
        result: civic311.Receipt = both(city, "submit", request)
        return result

    with pytest.raises(EmergencySuspectedError):
        file_unless_emergency(FIRE)
    assert seen == []  # refused before anything was sent
    with pytest.warns(EmergencyWarning, match="911"):
        check(FIRE.description, "warn")
    assert both(city, "submit", FIRE).service_request_id == "101"


def test_emergency_is_no_longer_a_client_option() -> None:
    """The old emergency= policy is refused by both clients (a TypeError, as for any unknown
    keyword), so code that relied on it learns it must call civic311.triage.check."""
    with pytest.raises(TypeError, match="emergency"):
        civic311.Client("https://city.example/v2", emergency="warn")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="emergency"):
        civic311.AsyncClient("https://city.example/v2", emergency="refuse")  # type: ignore[call-arg]
