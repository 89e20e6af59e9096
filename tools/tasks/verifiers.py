"""Answer verifiers: a strict check (the completion IS the answer) and a lenient extraction."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel

Metric = Literal["exact", "numeric", "choice"]
METRICS: tuple[str, ...] = ("exact", "numeric", "choice")

# Strict numbers are plain decimals: no thousands separators and no trailing "." so that "85." or
# "1,000" (what a chatty model emits) only earn the lenient score.
_STRICT_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)")
# Lenient numbers: the look-behind keeps "5-3" from reading as "-3" and "x2" from reading as "2";
# the comma form needs exact groups of three so that a list "1,2,3" is not read as 123.
_ANY_NUMBER = re.compile(
    r"(?<![\w.])[+-]?(?:\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+)(?:\.\d+)?|(?<![\w.])[+-]?\.\d+"
)
_ANSWER_MARKER = re.compile(r"\banswer\b\s*(?:is\b\s*:?|:)\s*(.+)", re.IGNORECASE)
# Choice labels, in the order they are tried within one text: "(B)", "B." / "B)", bare "B".
_CHOICE_ONLY = re.compile(r"^\W*([A-Za-z])\W*$")
_CHOICE_AFTER_MARKER = re.compile(r"^\(?([A-Za-z])\)?(?!\w)")
_CHOICE_LABEL = re.compile(
    r"\(([A-Za-z])\)"
    r"|(?<![\w.(])([A-Za-z])[.)](?!\w)"
    r"|(?<![\w'])([A-Z])(?![\w'])"
)
# "A good idea" / "I think": a capital A or I followed by a lowercase word is prose, not a label.
_PROSE_LETTER = re.compile(r"[AI]\s+[a-z]")
_DECORATION = " \t\n\"'`*_"


class Verdict(BaseModel):
    """Outcome of one check: strict and lenient correctness, and what was extracted."""

    strict: bool
    lenient: bool
    extracted: str | None = None


def verify(metric: Metric, completion: str, answer: str) -> Verdict:
    """Check `completion` against the reference `answer` under `metric`."""
    if metric == "exact":
        verdict = _verify_exact(completion, answer)
    elif metric == "numeric":
        verdict = _verify_numeric(completion, answer)
    elif metric == "choice":
        verdict = _verify_choice(completion, answer)
    else:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    # A completion that passes the strict check must never score lower under the lenient one.
    if verdict.strict and not verdict.lenient:
        verdict = verdict.model_copy(update={"lenient": True})
    return verdict


def reward(metric: Metric, completion: str, answer: str) -> float:
    """GRPO reward: 1.0 when strictly right, 0.5 when only leniently right, 0.0 otherwise."""
    verdict = verify(metric, completion, answer)
    if verdict.strict:
        return 1.0
    return 0.5 if verdict.lenient else 0.0


def _normalize_text(text: str) -> str:
    """Case-, whitespace- and decoration-insensitive form used by the lenient exact check."""
    text = " ".join(text.lower().split())
    text = re.sub(r"\s*,\s*", ", ", text)
    text = text.strip(_DECORATION)
    text = re.sub(r"\.+$", "", text)
    return text.strip(_DECORATION)


def _marker_tail(completion: str) -> str | None:
    """Text after the last "answer:" / "answer is" marker, up to the end of its line."""
    tail = None
    for line in completion.splitlines():
        for match in _ANSWER_MARKER.finditer(line):
            tail = match.group(1)
    return tail


def _verify_exact(completion: str, answer: str) -> Verdict:
    stripped = completion.strip()
    target = answer.strip()
    if stripped == target:
        return Verdict(strict=True, lenient=True, extracted=stripped)
    lines = [line.strip() for line in completion.splitlines() if line.strip()]
    candidates = [stripped]
    if lines:
        candidates.append(lines[-1])
    tail = _marker_tail(completion)
    if tail is not None:
        candidates.append(tail.strip())
    wanted = _normalize_text(target)
    for candidate in candidates:
        if _normalize_text(candidate) == wanted:
            return Verdict(strict=False, lenient=True, extracted=candidate.strip(_DECORATION))
    # Report the most answer-like span so a failure sample shows what the model committed to.
    best = tail.strip() if tail is not None else (lines[-1] if lines else None)
    return Verdict(strict=False, lenient=False, extracted=best)


def contains_answer(completion: str, answer: str) -> bool:
    """Whether the answer appears in the completion as a whole phrase, in any case ("Vienna"
    in "The capital of Austria is Vienna.", not "Tunis" in "Tunisia")."""
    wanted = " ".join(answer.lower().split())
    if not wanted:
        return False
    text = " ".join(completion.lower().split())
    return re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text) is not None


def parse_number(text: str) -> Decimal | None:
    """A number written with optional sign, thousands commas and decimals, or None."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    if not _STRICT_NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex only admits valid decimals
        return None


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= Decimal("1e-6") * max(abs(a), abs(b)) or abs(a - b) <= Decimal("1e-12")


def _verify_numeric(completion: str, answer: str) -> Verdict:
    target = parse_number(answer)
    stripped = completion.strip()
    matches = _ANY_NUMBER.findall(completion)
    extracted = matches[-1] if matches else None
    if target is None:
        return Verdict(strict=False, lenient=False, extracted=extracted)
    strict = bool(_STRICT_NUMBER.fullmatch(stripped)) and Decimal(stripped) == target
    lenient = False
    if extracted is not None:
        value = parse_number(extracted)
        lenient = value is not None and _close(value, target)
    return Verdict(strict=strict, lenient=lenient, extracted=extracted)


def _first_choice_label(completion: str) -> str | None:
    """The option label a completion commits to, or None when it names none."""
    only = _CHOICE_ONLY.match(completion)
    if only:
        return only.group(1)
    # An explicit "answer is B" outranks labels mentioned earlier while reasoning about options.
    tail = _marker_tail(completion)
    if tail is not None:
        marked = _CHOICE_AFTER_MARKER.match(tail.strip().lstrip("*_`\"'"))
        if marked:
            return marked.group(1)
    for match in _CHOICE_LABEL.finditer(completion):
        if match.group(3) and _PROSE_LETTER.match(completion, match.start()):
            continue
        return next(group for group in match.groups() if group)
    return None


def _verify_choice(completion: str, answer: str) -> Verdict:
    stripped = completion.strip()
    target = answer.strip()
    if stripped == target:
        return Verdict(strict=True, lenient=True, extracted=stripped)
    label = _first_choice_label(completion)
    lenient = label is not None and label.upper() == target.upper()
    return Verdict(strict=False, lenient=lenient, extracted=label)
