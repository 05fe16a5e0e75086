"""Facts taken from a prompt, and JSON instances built from a JSON schema with them.

``instance(schema, facts, rng)`` returns a value valid against ``schema`` (types, enum, const,
bounds, lengths, required, ``additionalProperties``, ``$ref``/``$defs``, ``anyOf``/``oneOf``/
``allOf``), filled from the prompt where the property names fit: numbers in order for integers and
numbers, places for ``location``/``city``, quoted strings or the question for ``query``/``text``,
proper names for ``name``. Non-ASCII text from the prompt is kept as it is.
"""

from __future__ import annotations

import math
import random
import re
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STOPWORDS",
    "PromptFacts",
    "instance",
    "keywords",
    "name_words",
    "requested_keys",
    "string_role",
    "word_set",
]


def word_set(text: str) -> frozenset[str]:
    """A set of words written as one space-separated string."""
    return frozenset(text.split())


STOPWORDS = word_set(
    "a an the and or but if then else of to in on at by for with from into onto about as is are was were "
    "be been being am do does did have has had i you he she it we they me my your our their this that "
    "these those what which who whom whose when where why how can could would should will shall may might "
    "must please tell give show find get let make say says said use using just also very so not no yes "
    "any some all each every more most less few many much one two there here than too only own same such "
    "both few other its it's what's number numbers value values thing things know want need like up out "
    "over under again further once now explain describe write summarize summarise list briefly simply "
    "quickly short shortly detail detailed brief sentence sentences word words answer reply respond "
    "question help return returns json key keys"
)
_QUESTION_WORDS = word_set(
    "what who where when why how which please can could would tell give show find get add say list is are "
    "do does make create write explain describe compute calculate return extract generate"
)
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_QUOTED_RE = re.compile(r"\"([^\"\n]{1,300})\"|“([^”\n]{1,300})”|«([^»\n]{1,300})»|(?<!\w)'([^'\n]{1,300})'(?!\w)")
_WORD = r"(?:[A-ZÀ-ÖØ-Þ][\w'\u2019.-]*|[^\W\d_]*[^\x00-\x7F][^\W\d_]*)"
_PHRASE_RE = re.compile(rf"{_WORD}(?:(?:[ \t]+|,[ \t]*){_WORD})*")
_PREPOSITIONS = frozenset(["in", "at", "for", "near", "from", "to", "of", "around", "across"])
_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")

_PLACE = word_set("location city place country address destination origin region town state area where locale")
_TEXT = word_set(
    "query q question text prompt input message search topic content keywords keyword term terms "
    "statement sentence instruction request description summary"
)
_NAMEISH = frozenset(
    ["name", "person", "user", "username", "author", "title", "company", "product", "item", "subject", "entity"]
)
_MAX_DEPTH = 8
_ACRONYMS = frozenset(["JSON", "API", "XML", "YAML", "CSV", "HTML", "SQL", "URL", "HTTP", "ID", "I"])


def name_words(name: str) -> list[str]:
    """``"get_current_weather"`` / ``"getCurrentWeather"`` -> ``["get", "current", "weather"]``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[\s_\-.]+", spaced.lower()) if w]


def keywords(text: str) -> list[str]:
    """Distinct content words of ``text`` in order (stopwords dropped), original case kept."""
    seen: set[str] = set()
    out: list[str] = []
    for word in _WORD_RE.findall(text):
        low = word.lower()
        if low in STOPWORDS or len(word) < 3 or low.isdigit() or low in seen:
            continue
        seen.add(low)
        out.append(word)
    return out


def requested_keys(text: str) -> list[str]:
    """Keys a prompt asks for: ``keys "a", "b"``, ``fields name and age``, ``with properties x, y``."""
    found: list[str] = []
    for match in re.finditer(
        r"\b(?:keys?|fields?|properties|attributes)\b\s*(?:named|called|:)?\s*([^.\n;!?]+)", text, re.IGNORECASE
    ):
        span = match.group(1)
        span = re.split(r"\b(?:for|about|describing|that|which|where|from)\b", span, maxsplit=1)[0]
        for token in re.findall(r"[\"'`]?([A-Za-z_][\w-]*)[\"'`]?", span):
            if token.lower() not in {"and", "or", "the", "with", "a", "an", "of", "as", "keys", "key", "json"}:
                found.append(token)
    for sentence in re.split(r"(?<=[.!?\n])\s+", text):
        if re.search(r"\b(?:json|keys?|fields?|properties|attributes)\b", sentence, re.IGNORECASE):
            found.extend(re.findall(r"[\"'`]([A-Za-z_][\w-]*)[\"'`]", sentence))
    for token in re.findall(r"`([A-Za-z_][\w-]*)`", text):
        found.append(token)
    return list(dict.fromkeys(found))


def string_role(name: str) -> str | None:
    """What a string property named ``name`` holds: ``"place"``, ``"text"``, ``"name"`` or ``None``."""
    words = set(name_words(name))
    if words & _PLACE:
        return "place"
    if words & _TEXT:
        return "text"
    if words & _NAMEISH:
        return "name"
    return None


@dataclass
class PromptFacts:
    """What a prompt offers to fill arguments with; values are used up in order."""

    text: str
    numbers: list[int | float] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    proper: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    _next_number: int = 0
    _used: set[str] = field(default_factory=set)

    @classmethod
    def from_text(cls, text: str) -> PromptFacts:
        numbers: list[int | float] = []
        for raw in _NUMBER_RE.findall(text):
            value = float(raw)
            numbers.append(int(value) if value.is_integer() and "." not in raw else value)
        quoted = [next(g for g in m.groups() if g is not None) for m in _QUOTED_RE.finditer(text)]
        places: list[str] = []
        proper: list[str] = []
        for match in _PHRASE_RE.finditer(text):
            phrase = match.group().strip(" ,.'\u2019-")
            if not phrase:
                continue
            before = text[: match.start()].rstrip()
            # ``in 'London'``: the preposition before an opening quote counts too.
            unquoted = before.rstrip("'\"\u201c\u2018\u00ab").rstrip()
            previous = unquoted.split()[-1].lower() if unquoted.split() else ""
            at_start = not before or before[-1] in ".!?:\n"
            if previous in _PREPOSITIONS:
                places.append(phrase)
            words = phrase.split()
            if at_start and words and words[0].lower().strip("'\u2019s") in _QUESTION_WORDS:
                phrase = " ".join(words[1:])
            phrase = " ".join(w for w in phrase.split() if w.upper() not in _ACRONYMS)
            if phrase and phrase.lower() not in STOPWORDS and phrase.lower() not in _QUESTION_WORDS:
                proper.append(phrase)
        return cls(
            text=text.strip(),
            numbers=numbers,
            quoted=quoted,
            places=places,
            proper=proper,
            words=keywords(text),
            tokens=[t.strip(".,;:!?()[]{}\"'") for t in text.split() if t.strip(".,;:!?()[]{}\"'")],
        )

    def take_number(self, low: float | None, high: float | None) -> int | float | None:
        while self._next_number < len(self.numbers):
            value = self.numbers[self._next_number]
            self._next_number += 1
            if (low is None or value >= low) and (high is None or value <= high):
                return value
        return None

    def remaining_numbers(self) -> int:
        return len(self.numbers) - self._next_number

    def take_string(self, *pools: list[str]) -> str | None:
        for pool in pools:
            for value in pool:
                if value not in self._used:
                    self._used.add(value)
                    return value
        return None


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = str(schema["$ref"])
        target: Any = root
        if ref.startswith("#"):
            for part in ref.lstrip("#").split("/"):
                if part:
                    target = (
                        target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
                    )
        else:
            target = {}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if isinstance(target, dict) else rest
        seen += 1
    return schema if isinstance(schema, dict) else {}


def _merge_all_of(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf") or []:
        part = _resolve(part, root)
        if "allOf" in part:
            part = _merge_all_of(part, root)
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def instance(schema: Any, facts: PromptFacts, rng: random.Random, *, name: str = "value") -> Any:
    """A value valid against ``schema``, filled from ``facts`` where names fit."""
    root = schema if isinstance(schema, dict) else {}
    return _instance(root, root, facts, rng, name, "", 0)


def _instance(
    schema: Any, root: dict[str, Any], facts: PromptFacts, rng: random.Random, name: str, hint: str, depth: int
) -> Any:
    if schema is True or schema is None:
        schema = {}
    if schema is False:
        return None
    schema = _resolve(schema, root)
    if "allOf" in schema:
        schema = _merge_all_of(schema, root)
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            non_null = [b for b in branches if _resolve(b, root).get("type") != "null"]
            base = {k: v for k, v in schema.items() if k != key}
            return _instance({**base, **_resolve((non_null or branches)[0], root)}, root, facts, rng, name, hint, depth)
    hint = " ".join(filter(None, [hint, str(schema.get("description", "")), str(schema.get("title", ""))]))
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _pick_enum(schema["enum"], facts, rng)
    kind = _schema_type(schema)
    if kind == "null":
        return None
    if kind == "boolean":
        words = set(name_words(name))
        return bool(words) and any(w in facts.text.lower() for w in words if len(w) > 2)
    if kind in ("integer", "number"):
        return _number(schema, facts, rng, integer=kind == "integer")
    if kind == "array":
        return _array(schema, root, facts, rng, name, hint, depth)
    if kind == "object":
        return _object(schema, root, facts, rng, depth)
    return _string(schema, facts, rng, name, hint)


def _pick_enum(options: list[Any], facts: PromptFacts, rng: random.Random) -> Any:
    text = facts.text.lower()
    for option in options:
        if isinstance(option, str) and option and re.search(rf"\b{re.escape(option.lower())}\b", text):
            return option
    return options[0] if len(options) == 1 else rng.choice(options)


def _number(schema: dict[str, Any], facts: PromptFacts, rng: random.Random, *, integer: bool) -> int | float:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        low = schema["exclusiveMinimum"] + (1 if integer else 1e-6)
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        high = schema["exclusiveMaximum"] - (1 if integer else 1e-6)
    value: int | float | None = facts.take_number(low, high)
    if value is not None and integer and not float(value).is_integer():
        value = None
    if value is None:
        lo = math.ceil(low) if low is not None else 1
        hi = math.floor(high) if high is not None else max(lo, 10)
        value = rng.randint(lo, hi) if hi >= lo else lo
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
        if high is not None and value > high:
            value -= multiple
    if integer:
        return int(value)
    return value


def _string(schema: dict[str, Any], facts: PromptFacts, rng: random.Random, name: str, hint: str) -> str:
    fmt = schema.get("format")
    canned = {
        "date": "2026-01-15",
        "date-time": "2026-01-15T09:30:00Z",
        "time": "09:30:00",
        "email": "user@example.com",
        "uri": "https://example.com/",
        "url": "https://example.com/",
        "uuid": "123e4567-e89b-42d3-a456-426614174000",
        "ipv4": "192.0.2.1",
        "hostname": "example.com",
    }
    if isinstance(fmt, str) and fmt in canned:
        return canned[fmt]
    words = set(name_words(name)) | {w.lower() for w in _WORD_RE.findall(hint)}
    question = facts.text.rstrip(" ?!.") if len(facts.text) <= 300 else " ".join(facts.words[:12])
    if words & _PLACE:
        value = facts.take_string(facts.places, facts.proper, facts.quoted)
    elif words & _TEXT:
        value = facts.take_string(facts.quoted) or question or None
    elif words & _NAMEISH:
        value = facts.take_string(facts.quoted, facts.proper, facts.words)
    else:
        value = facts.take_string(facts.quoted, facts.proper, facts.words)
    if not value:
        value = rng.choice(["example", "sample", "default", "value"])
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if not re.search(pattern, value):
                candidates = [*facts.quoted, *facts.proper, *facts.words, *facts.tokens]
                value = next((c for c in candidates if re.search(pattern, c)), None) or _from_pattern(pattern, rng)
        except re.error:
            pass
    min_len = schema.get("minLength")
    if isinstance(min_len, int) and len(value) < min_len:
        value = (value + " " + "x" * min_len)[: max(min_len, len(value))]
    max_len = schema.get("maxLength")
    if isinstance(max_len, int) and len(value) > max_len:
        value = value[:max_len]
    return value


def _array(
    schema: dict[str, Any],
    root: dict[str, Any],
    facts: PromptFacts,
    rng: random.Random,
    name: str,
    hint: str,
    depth: int,
) -> list[Any]:
    min_items = int(schema.get("minItems", 0) or 0)
    max_items = schema.get("maxItems")
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        return [_instance(p, root, facts, rng, name, hint, depth + 1) for p in prefix]
    items = _resolve(schema.get("items", {}), root) if schema.get("items") is not None else {}
    item_type = _schema_type(items) if items else "string"
    if depth >= _MAX_DEPTH:
        count = min_items
    elif item_type in ("integer", "number") and facts.remaining_numbers() > 0:
        count = max(min_items, facts.remaining_numbers())
    elif item_type == "string" and len(facts.quoted) > 1:
        count = max(min_items, len(facts.quoted))
    else:
        count = max(min_items, 1)
    if isinstance(max_items, int):
        count = min(count, max_items)
    values: list[Any] = []
    attempts = 0
    while len(values) < count and attempts < count * 4 + 4:
        attempts += 1
        value = _instance(items, root, facts, rng, name, hint, depth + 1)
        if schema.get("uniqueItems") and value in values:
            if isinstance(value, str):
                value = f"{value} {len(values) + 1}"
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = value + len(values)
            if value in values:
                continue
        values.append(value)
    return values


def _object(
    schema: dict[str, Any], root: dict[str, Any], facts: PromptFacts, rng: random.Random, depth: int
) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    result: dict[str, Any] = {}
    names = list(properties) if depth < _MAX_DEPTH else [n for n in properties if n in required]
    for prop in names:
        result[prop] = _instance(properties[prop], root, facts, rng, prop, "", depth + 1)
    for prop in required:
        if prop not in result:
            extra = schema.get("additionalProperties")
            result[prop] = _instance(extra if isinstance(extra, dict) else {}, root, facts, rng, prop, "", depth + 1)
    extra = schema.get("additionalProperties")
    if not properties and not required and isinstance(extra, dict) and extra and depth < _MAX_DEPTH:
        key = facts.take_string(facts.words) or "key"
        result[key] = _instance(extra, root, facts, rng, key, "", depth + 1)
    min_props = schema.get("minProperties")
    while isinstance(min_props, int) and len(result) < min_props and extra is not False:
        key = f"key{len(result) + 1}"
        result[key] = _instance(extra if isinstance(extra, dict) else {}, root, facts, rng, key, "", depth + 1)
    return result


# The regex parser moved (``sre_parse`` is deprecated from 3.11); a version check, which mypy
# follows, rather than try/except, so each branch is type-checked against its own Python.
if sys.version_info >= (3, 11):
    from re import _parser as _sre_parse
else:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse


def _from_pattern(pattern: str, rng: random.Random) -> str:
    """A short string matching a regex ``pattern`` (literals, classes, repeats, groups, alternation)."""
    c = _sre_parse
    out: list[str] = []

    def pick_in(items: list[tuple[Any, Any]]) -> str:
        if any(op is c.NEGATE for op, _ in items):
            for candidate in "xa0_-Z":
                if re.fullmatch(_class_source(items), candidate):
                    return candidate
            return "x"
        op, value = items[0]
        if op is c.LITERAL:
            return chr(value)
        if op is c.RANGE:
            return chr(rng.randint(value[0], value[1]))
        if op is c.CATEGORY:
            return _category_char(value, rng)
        return "x"

    def emit(items: Any) -> None:
        for op, value in items:
            if op is c.LITERAL:
                out.append(chr(value))
            elif op is c.NOT_LITERAL:
                out.append("x" if value != ord("x") else "y")
            elif op is c.ANY:
                out.append("a")
            elif op is c.IN:
                out.append(pick_in(list(value)))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT) or str(op) == "POSSESSIVE_REPEAT":
                low, high, sub = value
                count = low if low > 0 else (1 if high >= 1 else 0)
                for _ in range(min(count, 64)):
                    emit(sub)
            elif op is c.SUBPATTERN:
                emit(value[-1])
            elif op is c.BRANCH:
                emit(value[1][0])
            elif op is c.CATEGORY:
                out.append(_category_char(value, rng))
            elif op is c.GROUPREF:
                out.append("")

    try:
        emit(_sre_parse.parse(pattern))
    except Exception:
        return "x"
    return "".join(out)


def _category_char(category: Any, rng: random.Random) -> str:
    name = str(category)
    if "NOT_DIGIT" in name or "NOT_SPACE" in name:
        return "a"
    if "DIGIT" in name:
        return str(rng.randint(0, 9))
    if "NOT_WORD" in name or "SPACE" in name:
        return " "
    return rng.choice("abcdefghijklmnopqrstuvwxyz")


def _class_source(items: list[tuple[Any, Any]]) -> str:
    c = _sre_parse
    parts = []
    negate = False
    for op, value in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            parts.append(re.escape(chr(value)))
        elif op is c.RANGE:
            parts.append(f"{re.escape(chr(value[0]))}-{re.escape(chr(value[1]))}")
        elif op is c.CATEGORY:
            name = str(value)
            parts.append({"DIGIT": r"\d", "WORD": r"\w", "SPACE": r"\s"}.get(name.rsplit("_", 1)[-1], ""))
    return f"[{'^' if negate else ''}{''.join(parts)}]"
