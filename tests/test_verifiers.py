"""Strict vs lenient verification and the GRPO reward."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postlab.tools.tasks.verifiers import Verdict, reward, verify

NUMERIC = [
    # (completion, answer, strict, lenient)
    ("85", "85", True, True),
    ("  85\n", "85", True, True),
    ("+85", "85", True, True),
    ("85.0", "85", True, True),
    ("57", "57.0", True, True),
    ("-3", "-3", True, True),
    ("3.14159", "3.14159", True, True),
    ("1000", "1,000", True, True),
    ("The answer is 85.", "85", False, True),
    ("85.", "85", False, True),
    ("47 + 38 = 85", "85", False, True),
    ("The result is -3", "-3", False, True),
    ("1,000", "1000", False, True),
    ("It comes to 1,000 units.", "1000", False, True),
    ("roughly 1000000.5", "1000000", False, True),  # within 1e-6 relative
    ("1_000", "1000", False, False),  # Python's float() would take it; a verifier must not
    ("85 or maybe 86", "85", False, False),  # the LAST number counts
    ("86", "85", False, False),
    ("1001", "1000", False, False),
    ("eighty-five", "85", False, False),
    ("", "85", False, False),
    ("3", "-3", False, False),
]


@pytest.mark.parametrize(("completion", "answer", "strict", "lenient"), NUMERIC)
def test_numeric(completion: str, answer: str, strict: bool, lenient: bool) -> None:
    verdict = verify("numeric", completion, answer)
    assert (verdict.strict, verdict.lenient) == (strict, lenient)


def test_numeric_extracts_last_number_with_separators() -> None:
    assert verify("numeric", "The answer is 85.", "85").extracted == "85"
    assert verify("numeric", "from 12 to 1,250", "1250").extracted == "1,250"
    assert verify("numeric", "5 apples, -7 pears", "-7").extracted == "-7"
    assert verify("numeric", "no digits here", "1").extracted is None


def test_numeric_minus_between_digits_is_not_a_sign() -> None:
    # "10-3" is an expression; reading "-3" out of it would reward a wrong final answer of -3.
    verdict = verify("numeric", "10-3", "-3")
    assert not verdict.lenient
    assert verdict.extracted == "3"


def test_numeric_non_numeric_answer_never_matches() -> None:
    assert verify("numeric", "85", "eighty-five") == Verdict(
        strict=False, lenient=False, extracted="85"
    )


EXACT = [
    ("2, 4, 7, 9", "2, 4, 7, 9", True, True),
    ("\n2, 4, 7, 9  ", "2, 4, 7, 9", True, True),
    ("2,4,7,9", "2, 4, 7, 9", False, True),
    ("2 , 4,7 ,  9", "2, 4, 7, 9", False, True),
    ("The answer is 2, 4, 7, 9.", "2, 4, 7, 9", False, True),
    ("Sorted ascending:\n2, 4, 7, 9", "2, 4, 7, 9", False, True),
    ("2, 4, 9, 7", "2, 4, 7, 9", False, False),
    ("2, 4, 7", "2, 4, 7, 9", False, False),
    ("yes", "yes", True, True),
    ("Yes", "yes", False, True),
    ("yes.", "yes", False, True),
    ("**yes**", "yes", False, True),
    ("Answer: yes", "yes", False, True),
    ("Let me check: 17 is odd.\nno", "no", False, True),
    ("I would say yes, probably", "yes", False, False),
    ("no", "yes", False, False),
    ("", "yes", False, False),
]


@pytest.mark.parametrize(("completion", "answer", "strict", "lenient"), EXACT)
def test_exact(completion: str, answer: str, strict: bool, lenient: bool) -> None:
    verdict = verify("exact", completion, answer)
    assert (verdict.strict, verdict.lenient) == (strict, lenient)


def test_exact_is_case_sensitive_strictly() -> None:
    assert not verify("exact", "Paris", "paris").strict
    assert verify("exact", "Paris", "paris").lenient


def test_exact_extracts_the_committed_span() -> None:
    assert verify("exact", "The answer is: maybe", "yes").extracted == "maybe"
    assert verify("exact", "Answer: yes", "yes").extracted == "yes"


CHOICE = [
    ("B", "B", True, True),
    (" B\n", "B", True, True),
    ("b", "B", False, True),
    ("(B)", "B", False, True),
    ("B.", "B", False, True),
    ("B) 134", "B", False, True),
    ("The answer is B.", "B", False, True),
    ("the answer is (c)", "C", False, True),
    ("A good guess is (C)", "C", False, True),
    ("I think it is D", "D", False, True),
    ("Option (A) is wrong; the answer is D", "D", False, True),
    ("(A)", "B", False, False),
    ("A", "B", False, False),
    ("I don't know", "B", False, False),
    ("", "B", False, False),
]


@pytest.mark.parametrize(("completion", "answer", "strict", "lenient"), CHOICE)
def test_choice(completion: str, answer: str, strict: bool, lenient: bool) -> None:
    verdict = verify("choice", completion, answer)
    assert (verdict.strict, verdict.lenient) == (strict, lenient)


def test_choice_takes_first_label_without_an_answer_marker() -> None:
    verdict = verify("choice", "(C) looks right, though (B) is close", "B")
    assert verdict.extracted == "C"
    assert not verdict.lenient
    assert verify("choice", "I don't know", "B").extracted is None


# Completions built around the answer (bare, padded, decorated, after a marker, beside other
# numbers and labels): the shapes where strict and lenient could disagree.
_ANSWERS = st.sampled_from(["85", "-3", "1,000", "57.0", "B", "yes", "2, 4, 7, 9", "(B)"])
_AROUND = st.sampled_from(["", " ", "\n", ".", "**", "(", ")", "The answer is ", "A: ", "B", "12"])


@settings(max_examples=300, deadline=None)
@given(
    metric=st.sampled_from(["numeric", "exact", "choice"]),
    answer=_ANSWERS,
    before=_AROUND,
    after=_AROUND,
    noise=st.text(max_size=6),
)
def test_lenient_whenever_strict(
    metric: str, answer: str, before: str, after: str, noise: str
) -> None:
    for completion in (answer, before + answer + after, noise + before + answer, noise):
        verdict = verify(metric, completion, answer)  # type: ignore[arg-type]
        assert verdict.lenient or not verdict.strict, (metric, completion, answer)


@pytest.mark.parametrize(
    ("metric", "strict", "lenient_only", "wrong", "answer"),
    [
        ("numeric", "85", "The answer is 85.", "86", "85"),
        ("exact", "2, 4, 7, 9", "2,4,7,9", "9, 7, 4, 2", "2, 4, 7, 9"),
        ("choice", "B", "(B)", "(A)", "B"),
    ],
)
def test_reward_levels(
    metric: str, strict: str, lenient_only: str, wrong: str, answer: str
) -> None:
    assert reward(metric, strict, answer) == 1.0  # type: ignore[arg-type]
    assert reward(metric, lenient_only, answer) == 0.5  # type: ignore[arg-type]
    assert reward(metric, wrong, answer) == 0.0  # type: ignore[arg-type]


def test_unknown_metric_raises() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        verify("fuzzy", "a", "a")  # type: ignore[arg-type]
