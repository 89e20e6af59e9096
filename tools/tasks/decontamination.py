"""Held-out contamination: a split's prompts and content n-grams, with template words ignored."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from postlab.tools.tasks.model import Example, normalize_prompt

# An n-gram in more than this share of held-out items (and in at least TEMPLATE_MIN_ITEMS of
# them) is the task's prompt template, not content: matching it says nothing about leakage.
TEMPLATE_SHARE = 0.10
TEMPLATE_MIN_ITEMS = 3
# Length of the n-grams used to find template words.
TEMPLATE_NGRAM = 3
# A place in a template that at least this many of the answers' words fill is a slot: its word
# is what the item asks ("today is monday", "today is friday", … in a folder of weekday
# questions), not boilerplate. Measured on the held-out weekdays folder
# (benchmarks/heldout/make_tasks.py): with the day counted as template, an item's content was
# its number and answer alone; 151 of 310 training rows were flagged, 81 of them asking another
# day's question, while 16 rows asking a held-out question were kept. With slots, 104 of 300
# are flagged, 99 of them asking a held-out question (its day, number and direction), and none
# asking one is kept.
SLOT_MIN_FILLERS = 4
DEFAULT_NGRAM = 8
# Content shorter than this is no evidence of a leak: one word left of an item ("the", or a
# template's first word once the phrase after it recurs in the split) is in every other item.
# Measured on phrase_edits (benchmarks/heldout/make_tasks.py, each phrase asked four ways with
# four answers, so a three-word phrase counts as template): test items left with "write" or
# "the" alone flagged 12 of its 36 validation items, every capital-letters question among them.
SHORT_MIN_WORDS = 2
_WORD = re.compile(r"\w+")


def _words(example: Example) -> list[str]:
    return _WORD.findall(f"{example.prompt} {example.answer}".lower())


def _answer_key(example: Example) -> str:
    return " ".join(example.answer.lower().split())


# An n-gram with one position left open (None): the words around a slot.
Frame = tuple[str | None, ...]


def _frame(gram: tuple[str, ...], at: int) -> Frame:
    return (*gram[:at], None, *gram[at + 1 :])


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class ContaminationIndex:
    """The held-out items' prompts and content n-grams, template boilerplate stripped out."""

    def __init__(self, held_out: list[Example], ngram_n: int = DEFAULT_NGRAM) -> None:
        self.n = ngram_n
        self.prompts = {normalize_prompt(example.prompt) for example in held_out}
        tokenized = [_words(example) for example in held_out]
        # Template detection uses short n-grams: boilerplate such as "sort these numbers in
        # ascending order" is shorter than n, and an n-gram made of one number plus seven template
        # words ("7 reply with the sorted numbers separated by") is rare enough to pass a
        # frequency test, yet flags every training item that happens to share that one number.
        self.t = min(TEMPLATE_NGRAM, ngram_n)
        counts: Counter[tuple[str, ...]] = Counter()
        answers: dict[tuple[str, ...], set[str]] = defaultdict(set)
        answer_keys = [_answer_key(example) for example in held_out]
        for answer, words in zip(answer_keys, tokenized, strict=True):
            grams = _ngrams(words, self.t)
            counts.update(grams)
            for gram in grams:
                answers[gram].add(answer)
        share = TEMPLATE_SHARE * len(held_out)
        frequent = {
            gram for gram, count in counts.items() if count > share and count >= TEMPLATE_MIN_ITEMS
        }
        # Words, not numbers: a number beside a template is content already (too rare to be
        # boilerplate), and a frame around it would make boilerplate of names ("tom has").
        self.answer_words = {
            word for key in answer_keys for word in _WORD.findall(key) if not word.isdigit()
        }
        self.slot_frames = self._slot_frames(tokenized, share)
        # Boilerplate is shared by items with different answers. An n-gram that only ever comes
        # with one answer is one item's content asked several ways ("Write 'good morning' in
        # capitals", "Shout this: 'good morning'"): counted as template, it would erase that
        # content and leave the template's own words to flag every row written in it.
        several = len(set(answer_keys)) > 1
        self.template = {
            gram
            for gram in frequent
            if (not several or len(answers[gram]) > 1) and not self._slots_in(gram)
        }
        self.ngrams: set[tuple[str, ...]] = set()
        # Items whose content is shorter than n are matched on their whole content (n shrinks
        # per item), so they can still be found without shrinking n for every other item.
        self.short: dict[int, set[tuple[str, ...]]] = {}
        for words in tokenized:
            content = self.content(words)
            if len(content) >= self.n:
                self.ngrams |= _ngrams(content, self.n)
            elif len(content) >= SHORT_MIN_WORDS:
                self.short.setdefault(len(content), set()).add(tuple(content))

    def _slot_frames(self, tokenized: list[list[str]], share: float) -> set[Frame]:
        """The frequent n-grams with one word left open that at least SLOT_MIN_FILLERS of the
        answers' words fill ("today is monday", "today is friday", …). Only answer words are
        counted: other words that vary in one place are a template's alternative phrasings
        ("classify 'pig' as animal", "pick the category of 'pig' from animal"), and a label
        set smaller than SLOT_MIN_FILLERS (animal, fruit, tool) fills no slot."""
        seen: Counter[Frame] = Counter()
        fillers: defaultdict[Frame, set[str]] = defaultdict(set)
        for words in tokenized:
            frames = set()
            for gram in _ngrams(words, self.t):
                for at in self._answer_positions(gram):
                    frame = _frame(gram, at)
                    frames.add(frame)
                    fillers[frame].add(gram[at])
            seen.update(frames)
        return {
            frame
            for frame, count in seen.items()
            if count > share
            and count >= TEMPLATE_MIN_ITEMS
            and len(fillers[frame]) >= SLOT_MIN_FILLERS
        }

    def _answer_positions(self, gram: tuple[str, ...]) -> list[int]:
        return [at for at, word in enumerate(gram) if word in self.answer_words]

    def _slots_in(self, gram: tuple[str, ...]) -> set[int]:
        """The positions of the n-gram whose words fill a slot frame."""
        if not self.slot_frames:  # most tasks: nothing to look up for each training row
            return set()
        return {at for at in self._answer_positions(gram) if _frame(gram, at) in self.slot_frames}

    def content(self, words: list[str]) -> list[str]:
        """The words no template n-gram or slot frame covers as boilerplate."""
        covered = [False] * len(words)
        asked = [False] * len(words)
        for i in range(len(words) - self.t + 1):
            gram = tuple(words[i : i + self.t])
            if gram in self.template:
                covered[i : i + self.t] = [True] * self.t
                continue
            slots = self._slots_in(gram)
            if not slots:
                continue
            for at in range(self.t):
                if at in slots:
                    asked[i + at] = True
                else:
                    covered[i + at] = True
        # A slot's word is content even where a template n-gram also spans it.
        kept = zip(words, covered, asked, strict=True)
        return [word for word, boiler, slot in kept if slot or not boiler]

    def contaminates(self, example: Example) -> bool:
        """Whether an example repeats a held-out prompt or shares held-out content n-grams."""
        if normalize_prompt(example.prompt) in self.prompts:
            return True
        content = self.content(_words(example))
        if not self.ngrams.isdisjoint(_ngrams(content, self.n)):
            return True
        return any(not grams.isdisjoint(_ngrams(content, k)) for k, grams in self.short.items())
