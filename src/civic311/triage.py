"""311 is not 911: notice descriptions that read like emergencies.

People sometimes describe an emergency in a 311 report — a gas smell, a downed power line, a
crash with someone hurt — and 311 may not read it for hours or days. `emergency_signals` looks
for such wording so an app can say, before sending: *this sounds like an emergency; call 911
(or your local emergency number) now*.

**This is a heuristic, not a guarantee.** It is a curated list of English words and phrases,
matched case-insensitively on word boundaries (with simple plurals and inflections: ``fire`` /
``fires``, ``bleed`` / ``bleeding``, ``drown`` / ``drowned``). It misses emergencies described
in other words or languages, and it flags some reports that are not emergencies. It does not
understand negation or tense: "this is not a fire, just smoke from a grill" is still read for
its words (the grill's smoke is not flagged; "fire" is). So:

- a signal is a reason to *tell* the person about 911, never a reason to drop or block a report
  silently. `check` with ``"warn"`` (the default the clients use) warns and lets the report go;
  ``"refuse"`` raises an error that says why, so the caller can ask the person and resend;
- no signal does not mean "safe": 311 forms should still say "for emergencies call 911".

Judgement calls (each has a test in tests/test_triage.py):

- *not* fire: "fire hydrant", "fireworks", "fire lane", "fire station", "fire alarm", "fire
  escape", "fire pit", and "fire hazard/risk/danger" (a worry about the future, the usual 311
  complaint about overgrown lots); "fire the contractor"; smoke from cigarettes, grills,
  chimneys and fireworks, and people who smoke; bonfires and campfires (an illegal-burning
  complaint is a 311 matter);
- *not* injury: "before someone gets hurt", "someone could get injured", "risk of injury" —
  the hypothetical harm every pothole report mentions. Injury needs someone who *is*, *was* or
  *got* hurt, an "injured person", or bleeding;
- *not* a crash: plurals ("so many car accidents at this corner" asks for a stop sign), a
  sign or pole "hit by a car" (a knocked-down sign is a 311 report), "crash barrier";
- *not* flooding into a home: street flooding, a flooded intersection (311 matters);
- *not* a weapon: nail, glue, staple, radar, water and spray guns; "shooting hoops"; a photo
  shoot; water "shooting out" of a hydrant;
- flagged although sometimes harmless: "smells like rotten eggs" (the standard gas-leak
  advice, though a sewer can smell the same), "explosion" (fireworks are excluded only when
  named next to it), basement flooding (a sewer backup is sometimes a 311 call).
"""

from __future__ import annotations

import re
import warnings
from typing import Literal, get_args

from civic311.errors import (
    EmergencyCategory,
    EmergencySuspectedError,
    EmergencyWarning,
    InvalidRequestError,
    Signal,
)

__all__ = [
    "EmergencyCategory",
    "EmergencyPolicy",
    "EmergencySuspectedError",
    "EmergencyWarning",
    "Signal",
    "check",
    "emergency_signals",
]


#: What `check` does with signals: warn and go on, refuse (raise), or return them silently.
EmergencyPolicy = Literal["warn", "refuse", "ignore"]
_POLICIES: tuple[str, ...] = get_args(EmergencyPolicy)

#: Plain-language names of the categories, for messages.
CATEGORY_LABELS: dict[str, str] = {
    "fire": "fire or smoke",
    "gas_leak": "a gas leak",
    "carbon_monoxide": "carbon monoxide",
    "injury": "someone injured",
    "medical": "a medical emergency",
    "overdose": "an overdose",
    "power_line": "a downed or live power line",
    "crash": "a crash",
    "drowning": "drowning",
    "weapon": "a weapon or shooting",
    "violence": "violence",
    "explosion": "an explosion",
    "trapped": "someone trapped",
    "flooding": "flooding into a home",
    "emergency": "an emergency",
}

ADVICE = "If this is an emergency, call 911 (or your local emergency number) now."


def _categories(signals: list[Signal]) -> list[str]:
    return list(dict.fromkeys(s.category for s in signals))


def _message(signals: list[Signal]) -> str:
    labels = ", ".join(CATEGORY_LABELS[c] for c in _categories(signals))
    quoted = ", ".join(repr(s.text) for s in signals[:5])
    return f"reads like an emergency ({labels}: {quoted}). 311 is not for emergencies. {ADVICE}"


# --- the phrase list -------------------------------------------------------------------------
#
# One rule per line: a category and a regular expression, matched case-insensitively. Patterns
# use \b word boundaries; (?<!word\s) and (?!\s+word) guards carry the judgement calls of the
# module docstring. Keep each guard next to the word it protects, and add a test line for each.

_PERSON = (
    r"(?:someone|somebody|person|people|man|woman|men|women|child|children|kid|kids|boy|girl"
    r"|baby|driver|drivers|pedestrian|pedestrians|cyclist|cyclists|biker|passenger|passengers"
    r"|resident|residents|neighbou?r|victim|family|he|she|they|i|we)(?:'s|'re|'m)?"
)
# "is", "was", "got", "has been"… — one or more; never "could", "might", "will get", "gets",
# nor "are getting" (habitual: "people are getting hurt on this sidewalk").
_BEEN = (
    r"(?:(?:is|are|was|were|am|been|got|just|has\s+been|have\s+been|badly|seriously|severely"
    r"|critically|really)\s+)+"
)
_NOT_TOOL_GUN = "".join(
    rf"(?<!{w}\s)"
    for w in (
        "nail",
        "glue",
        "staple",
        "radar",
        "water",
        "spray",
        "heat",
        "paint",
        "caulk",
        "caulking",
        "grease",
        "toy",
        "nerf",
        "squirt",
        "speed",
        "air",
        "bb",
    )
)
_NOT_HABIT_SMOKE = "".join(
    rf"(?<!{w}\s)"
    for w in (
        "cigarette",
        "cigar",
        "tobacco",
        "marijuana",
        "weed",
        "pot",
        "vape",
        "chimney",
        "grill",
        "bbq",
        "barbecue",
        "exhaust",
        "secondhand",
        "second-hand",
        "firework",
        "fireworks",
        "people",
        "they",
        "kids",
        "teens",
        "who",
        "to",
    )
)
_HOME = r"(?:house|home|basement|apartment|building|garage|bedroom|living\s+room|kitchen)"
# "down", but not "down the street" (power lines that run down a street are not down).
_DOWN = r"down\b(?!\s+(?:the|this|that|our|my|from|a)\b)"

_RULES: tuple[tuple[EmergencyCategory, str], ...] = (
    # fire ------------------------------------------------------------------------------------
    (
        "fire",
        r"(?<!cease\s)(?<!cease-)(?<!camp\s)(?<!bon\s)(?<!opened\s)(?<!should\s)(?<!please\s)"
        r"\bfires?\b"
        r"(?!\s*-?\s*(?:hydrants?|works?|lanes?|stations?|houses?|departments?|dept|escapes?"
        r"|alarms?|pits?|rings?|places?|hazards?|risks?|danger|codes?|trucks?|engines?|fighters?"
        r"|men|ants?|exting\w*|marshals?|inspect\w*|safety|zones?|roads?|wood|drills?|doors?"
        r"|sprinklers?|permits?|season|ban)\b)"
        r"(?!\s+(?:him|her|them|whoever|whomever|everyone|everybody|somebody|someone)\b)"
        r"(?!\s+(?:the|that|this)\s+(?:contractor|crew|company|workers?|person|manager|mayor"
        r"|staff|employees?|inspector)\b)",
    ),
    ("fire", r"\b(?:wild|bush|brush|grass|forest)fires?\b"),
    ("fire", r"\bflames?\b(?!\s*-?\s*(?:retardant|resistant))|\bablaze\b|(?<!trail\s)\bblaze\b"),
    (
        "fire",
        _NOT_HABIT_SMOKE + r"\bsmoke\b"
        r"(?!\s*(?:detectors?|alarms?|shops?|free|breaks?|signals?|stacks?|weed|pot|cigarettes?"
        r"|cigars?|marijuana|crack|meth|joints?|blunts?)\b)",
    ),
    (
        "fire",
        r"\b(?:burning|smoking)\s+(?:building|house|home|car|vehicle|apartment|structure|pole"
        r"|transformer|wires?|outlet|roof)\b",
    ),
    ("fire", r"\b(?:burning\s+(?:smell|odou?r)|smells?\s+(?:like\s+)?(?:something\s+)?burning)\b"),
    # gas -------------------------------------------------------------------------------------
    ("gas_leak", r"\b(?:gas|propane)\s+(?:leak\w*|smell\w*|odou?rs?)\b"),
    (
        "gas_leak",
        r"\b(?:smell\w*|odou?rs?|stench|stink\w*|reek\w*)\s+(?:of\s+|like\s+)?"
        r"(?:natural\s+|propane\s+)?gas\b",
    ),
    ("gas_leak", r"\bleak\w*\s+(?:natural\s+|propane\s+)?gas\b"),
    (
        "gas_leak",
        r"\bgas\s+(?:main|line|pipe)s?\s+(?:\w+\s+)?"
        r"(?:leak\w*|broke\w*|break|burst|ruptured?|hit|damaged|severed|cut)\b",
    ),
    ("gas_leak", r"\brotten[-\s]eggs?\s+(?:smell|odou?r)|\bsmells?\s+(?:like\s+)?rotten\s+eggs?\b"),
    ("carbon_monoxide", r"\bcarbon\s+monoxide\b|\bco\s+(?:alarm|detector|poisoning)s?\b"),
    # people hurt -----------------------------------------------------------------------------
    ("injury", rf"\b{_PERSON}\s+{_BEEN}(?:hurt|injured|wounded)\b"),
    (
        "injury",
        r"\b(?:injured|wounded|bleeding)\s+(?:man|woman|person|people|child|kid|boy|girl|driver"
        r"|pedestrian|cyclist|victim|passenger)s?\b",
    ),
    ("injury", r"\b(?:badly|seriously|severely|critically)\s+(?:hurt|injured|wounded)\b"),
    ("injury", r"\bbleed(?:s|ing)?\b"),
    (
        "medical",
        r"\bunconscious\b|\bunresponsive\b|\bheart\s+attack\b|\bcardiac\s+arrest\b"
        r"|\bseizures?\b|\bhaving\s+a\s+stroke\b|\bmedical\s+emergency\b|\bfainted\b",
    ),
    (
        "medical",
        r"\bpassed\s+out\b(?!\s+(?:flyers?|fliers?|leaflets?|pamphlets?|ballots?|papers?|food"
        r"|water|samples?|candy|tickets?)\b)",
    ),
    (
        "medical",
        r"\b(?:not|isn't|isnt|stopped|can't|cant|cannot|trouble|difficulty)\s+breath(?:e|ing)\b",
    ),
    ("medical", r"\bchoking\b(?!\s+(?:hazards?|the|out|off)\b)"),
    ("medical", rf"\b{_PERSON}\s+(?:(?:has|just|suddenly)\s+)?collapsed\b"),
    ("medical", r"\b(?:need|needs|call|send|get)\s+(?:an?\s+)?ambulance\b"),
    ("overdose", r"\bover-?\s?dos(?:e|ed|es|ing)\b|\bod(?:'d|'ed|'ing)\b"),
    # power lines -----------------------------------------------------------------------------
    (
        "power_line",
        r"\b(?:live|downed|sparking|arcing)\s+(?:power\s+|electric(?:al)?\s+|utility\s+"
        r"|high[-\s]voltage\s+)?(?:lines?|wires?|cables?)\b",
    ),
    (
        "power_line",
        r"\b(?:fallen|snapped|broken|hanging)\s+(?:power|electric(?:al)?|utility"
        r"|high[-\s]voltage)\s+(?:lines?|wires?|cables?)\b",
    ),
    (
        "power_line",
        r"\b(?:power|electric(?:al)?|utility|high[-\s]voltage)\s+(?:lines?|wires?|cables?|poles?)"
        r"\s+(?:(?:is|are|was|were|has|have|been|just|came|come|went)\s+){0,2}"
        rf"(?:{_DOWN}|fallen|fell|on\s+the\s+ground|sparking|arcing|snapped|on\s+fire|smoking"
        r"|in\s+the\s+(?:road|street))\b",
    ),
    # Bare "wires down"; bare "lines" need a verb ("lines are down"): "lines down Main St" are
    # road markings.
    ("power_line", rf"\bwires?\s+(?:(?:is|are|was|were)\s+)?(?:{_DOWN}|sparking\b|arcing\b)"),
    ("power_line", rf"\blines?\s+(?:(?:is|are|was|were)\s+{_DOWN}|(?:is\s+|are\s+)?sparking\b)"),
    (
        "power_line",
        r"\btransformers?\s+(?:(?:is|was|just)\s+)?(?:sparking|arcing|on\s+fire|smoking|blew"
        r"|exploded|blown)\b",
    ),
    # crashes ---------------------------------------------------------------------------------
    (
        "crash",
        r"\b(?:car|vehicle|auto|automobile|traffic|motorcycle|motorbike|bike|bicycle|bus|truck"
        r"|multi-?car|head-?on|rollover|roll-over)\s+(?:crash|collision|accident|wreck|pile-?up)\b"
        r"(?!\s*(?:barriers?|cushions?|attenuators?|rails?|test))",
    ),
    ("crash", r"\bcrashed\s+(?:into|through)\b|\bcollision\b|\bhit[-\s]and[-\s]run\b"),
    (
        "crash",
        r"\b(?:car|vehicle|truck|bus|van|suv|driver|motorcycle)\s+(?:(?:has|just|was)\s+)?"
        r"(?:crashed|flipped|overturned|rolled\s+over"
        r"|hit\s+a\s+(?:pedestrian|cyclist|child|kid|person|man|woman))\b",
    ),
    (
        "crash",
        rf"\b{_PERSON}\s+(?:(?:was|got|has\s+been|just|been)\s+)*"
        r"(?:hit|struck|run\s+over|knocked\s+down)\s+by\s+(?:a\s+|an\s+|the\s+)?"
        r"(?:car|vehicle|truck|bus|driver|motorcycle|van|suv)\b",
    ),
    # water -----------------------------------------------------------------------------------
    (
        "drowning",
        r"\bdrown(?:s|ed|ing)?\b(?!\s+in\s+(?:trash|garbage|litter|paperwork|debt|leaves|weeds"
        r"|noise)\b)|\bswept\s+away\b|\bfell\s+through\s+(?:the\s+)?ice\b",
    ),
    (
        "flooding",
        r"\b(?:water|flood\s*water|sewage|sewer\s+water)\s+(?:(?:is|was|keeps|has\s+been"
        r"|started)\s+)?(?:coming|pouring|rushing|flowing|getting|seeping|leaking|gushing"
        r"|running|backing\s+up|backed\s+up)\s+(?:up\s+)?(?:in|into|inside)\s+"
        rf"(?:(?:my|our|the|a|their|his|her|your)\s+)?{_HOME}\b",
    ),
    (
        "flooding",
        rf"\b{_HOME}s?\s+(?:(?:is|are|was|were|has|have|been|just|getting|completely)\s+)*"
        r"flood(?:ed|ing)\b",
    ),
    ("flooding", rf"\bflood(?:ed|ing)\s+(?:my|our|the|a|their|his|her)\s+{_HOME}\b"),
    # weapons and violence --------------------------------------------------------------------
    (
        "weapon",
        _NOT_TOOL_GUN + r"\b(?:guns?|gunman|gunmen|gunfire|gunshots?|firearms?|handguns?"
        r"|shotguns?|pistols?|rifles?)\b(?!\s*(?:range|club|shop|store|show|through)\b)",
    ),
    ("weapon", r"\bshots?\s+(?:were\s+|being\s+)?fired\b|\bopened\s+fire\b"),
    # Not "is shot" ("this streetlight is shot" = broken) nor "shot out" (a vandalised lamp).
    ("weapon", r"\b(?:was|were|got|been|being|getting)\s+shot\b(?!\s+(?:down|out)\b)"),
    (
        "weapon",
        r"(?<!photo\s)(?<!film\s)(?<!video\s)(?<!water\s)\bshootings?\b"
        r"(?!\s+(?:hoops?|baskets?|pictures?|photos?|videos?|films?|movies?|range|star|out|up"
        r"|into|from|across|water)\b)",
    ),
    (
        "weapon",
        r"\bstab(?:s|bed|bing|bings)?\b(?!\s+at\b)|\bweapons?\b|\b(?:knife|gun)point\b",
    ),
    (
        "weapon",
        r"\b(?:pulled|pulling|waving|brandishing|wielding)\s+(?:a\s+|an\s+|his\s+|her\s+)?"
        r"(?:knife|knives|gun|machete|weapon|blade)\b",
    ),
    (
        "weapon",
        r"\barmed\s+(?:man|men|person|people|robbery|robber|suspect|intruder|individual)\b",
    ),
    (
        "violence",
        r"\b(?:being|was|were|got|been|getting|is|are)\s+(?:attacked|assaulted|beaten|mugged"
        r"|kidnapped|abducted|raped|stabbed)\b",
    ),
    (
        "violence",
        r"\bassault(?:s|ed|ing)?\b|\bdomestic\s+(?:violence|dispute|abuse)\b|\bkidnap\w*"
        r"|\babduct\w*|\bhome\s+invasion\b"
        r"|\b(?:robbery|break-?in|burglary|fight|fighting)\s+in\s+progress\b"
        r"|\bthreatening\s+to\s+(?:kill|shoot|stab|hurt)\b",
    ),
    # explosions, entrapment, and saying so ---------------------------------------------------
    (
        "explosion",
        r"(?<!firework\s)(?<!fireworks\s)\bexplo(?:sion|sions|ded|de|des|ding)\b"
        r"(?!\s+(?:from|of)\s+(?:the\s+)?fireworks?\b)"
        r"|\bblew\s+up\b(?!\s+(?:at|on)\b)"
        r"|\bbomb\s+threat\b|\bpipe\s+bombs?\b|\bcar\s+bomb\b|\bexplosive\s+device\b"
        r"|\bsuspicious\s+package\b",
    ),
    (
        "trapped",
        r"(?<!water\s)(?<!trash\s)(?<!debris\s)(?<!leaves\s)"
        r"\b(?:trapped|pinned)\s+(?:in|inside|under|beneath)\s+"
        r"(?:(?:a|an|the|their|his|her|my|our)\s+)?(?:car|vehicle|elevator|lift|building|house"
        r"|home|apartment|rubble|debris|wreckage|fire|water|flood\w*)\b",
    ),
    # "stuck" only where being stuck is the danger (not "stuck in the house" by snow).
    (
        "trapped",
        r"\bstuck\s+(?:in|inside)\s+(?:(?:a|an|the)\s+)?"
        r"(?:elevator|lift|rubble|wreckage|flood\w*|rising\s+water)\b",
    ),
    (
        "trapped",
        rf"\b{_PERSON}\s+(?:(?:is|are|was|were|am|got|get|getting|been|has\s+been|have\s+been"
        r"|still|now)\s+)*trapped\b",
    ),
    (
        "emergency",
        r"\b(?:this|it)\s+is\s+an\s+emergency\b|\bit'?s\s+an\s+emergency\b"
        r"|\blife[-\s]threatening\s+emergency\b",
    ),
)

_COMPILED: tuple[tuple[EmergencyCategory, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern, re.IGNORECASE)) for category, pattern in _RULES
)

# Typographic apostrophes become ASCII ones: one character for one, so spans stay true.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"})


def emergency_signals(text: str) -> list[Signal]:
    """The wording in *text* that reads like an emergency, in order of appearance.

    Each match is a `Signal` (category, the words as written, their span). A match inside a
    longer match of the same category is dropped; different categories may overlap ("the
    transformer exploded" is a power line and an explosion).

    This is a heuristic (see the module docstring): use it to point people to 911, never to
    block a report silently.

    Raises:
        InvalidRequestError: *text* is not a string.
    """
    if not isinstance(text, str):
        raise InvalidRequestError("text", f"must be a string, not {type(text).__name__}")
    normalized = text.translate(_APOSTROPHES)
    found: list[tuple[int, int, EmergencyCategory]] = []
    for category, pattern in _COMPILED:
        found.extend((m.start(), m.end(), category) for m in pattern.finditer(normalized))
    # Longest first at each start, so a contained match meets its container before itself.
    found.sort(key=lambda f: (f[0], -f[1]))
    kept: list[tuple[int, int, EmergencyCategory]] = []
    for start, end, category in found:
        if any(c == category and s <= start and end <= e for s, e, c in kept):
            continue
        kept.append((start, end, category))
    return [Signal(category=c, text=text[s:e], span=(s, e)) for s, e, c in kept]


def check(
    text: str | None, policy: EmergencyPolicy = "warn", *, stacklevel: int = 2
) -> list[Signal]:
    """Apply an `EmergencyPolicy` to a description; return the signals found.

    - ``"warn"``: emit an `EmergencyWarning` naming the categories and advising 911, then
      return the signals (the report goes ahead);
    - ``"refuse"``: raise `EmergencySuspectedError` (field ``description``) if there are any;
    - ``"ignore"``: return the signals, silently.

    A None *text* (a request without a description) has no signals.

    Args:
        text: The description.
        policy: What to do about signals.
        stacklevel: Passed to `warnings.warn`, so the warning points at your call (raise it by
            one per wrapper between your code and this function).

    Raises:
        EmergencySuspectedError: with ``"refuse"``, when the text reads like an emergency.
        InvalidRequestError: an unknown policy, or *text* not a string.
    """
    if policy not in _POLICIES:
        raise InvalidRequestError("policy", f"must be one of {list(_POLICIES)}, got {policy!r}")
    if text is None:
        return []
    signals = emergency_signals(text)
    if not signals or policy == "ignore":
        return signals
    if policy == "refuse":
        raise EmergencySuspectedError(signals, _message(signals))
    warnings.warn(EmergencyWarning(_message(signals), signals), stacklevel=stacklevel)
    return signals
