"""Correcting a greedy CTC reading where a word list or a number's format explains it better.

The greedy path takes each step's most likely class, so one doubtful step spells "thc", and
english_g2 writes the decimal point of "4.20" as a comma, or drops it as a space, even on a
clean receipt. A correction proposes other spellings of a part of the reading (the lexicon's
near words for a word, two words as one where the list has it and not both parts ("Descr
iption"), an underscore between words as a space, the letters a digit looks like in a word
read with one ("t0", "1ts"), the article "a" for a lone "&" in prose, the decimal mark for an
amount's separator, ``:`` for a clock time's) and keeps the best one only if the network gives
it at least 1 / ``max_odds`` of the probability it gives what it read, summed over every CTC
alignment of the frames that part was read from. A format is a stronger prior than a near
word (digits, a separator, two decimals), so its odds are wider (``FORMAT_MAX_ODDS``):
english_g2 reads a receipt's "200.00" as "200 , 00" with the comma at odds of 1e5 to 1e6
against the point. A crisp "JALAN" stays (no other spelling is near it in probability); a
blurred "Cordition." becomes "Condition.". Letters are compared without case, since a misread
is rarely only one of case, and a correction takes the case of what it replaces. The reading's
confidence stays the greedy path's: a correction says which spelling the frames support best,
not how sure the network was.

An amount has two decimals after its separator ("1,234" has three and is left alone), and the
separator is a point unless ``decimal_mark`` says a comma (STR_DECIMAL_MARK=, for "4,20"); a
time is HH:MM:SS.
Words of three capitals or fewer are left as read: on documents they are abbreviations (SDN,
GST, RM) more often than misread words.

A word that is in the list but read with a doubtful letter may still be a misread of a far more
common one ("tor" for "for", "Lid" for "Ltd"): its neighbours one edit away are weighed by the
network's likelihood times the list's count (a unigram language model), and the more probable
one is kept, within the same odds.

A word whose characters the network read with a confidence under ``min_word_confidence``
(EasyOCR's formula, over the frames it was read from) is left out, as PaddleOCR's
``drop_score`` leaves out a line: on the dev set such words were mostly the scrawl of a crop's
edge or a stain, and an OCR answer is searched and indexed, where a wrong word costs more than
a missing one.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from common.config import Settings
from str_service.charsets import Charset
from str_service.decoding import ctc_confidence
from str_service.lexicon import Lexicon

# How much less probable than the greedy reading a correction may be: measured on the dev set,
# odds of 1e3 to 1e5 gave the same F1 within 0.005 (README "Accuracy and speed").
MAX_ODDS = 1e4
# The same for an amount's or a time's separator: the dev set's misread separators stood at odds
# of 1e4 to 3e6 (README "Accuracy and speed"); 1e7 leaves a separator read at 1e-9 as read.
FORMAT_MAX_ODDS = 1e7
MIN_WORD = 3  # letters: shorter words are left as read
# A word of the list whose every frame gave its character at least this is left as read: the
# frames leave no room for a more common word.
SURE = 0.99
ABBREVIATION = 3  # capitals: a word of no more than these, all upper case, is left as read

_WORD = re.compile(r"[A-Za-z]+")
# A token of letters and digits with a letter and a digit that looks like a letter ("t0", "1ts",
# "0f"): english_g2 reads a sans-serif "o" as "0" and an "l" or "i" as "1".
_MIXED = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z0-9]*[A-Za-z])(?=[A-Za-z0-9]*[015])[A-Za-z0-9]+")
LOOKALIKES = {"0": "o", "1": "li", "5": "s"}  # a digit, and the letters it may be misread for
# A lone "&" before a lower-case word: english_g2 reads the article "a" of prose so ("in &
# limited fashion"); between names ("BROWN & WILLIAMSON") it is left alone.
_AMPERSAND = re.compile(r"(?<!\S)&(?= [a-z])")
# The separator of an amount ("74,68", "3 08", "28 . 11", "4 .20") and both of a time
# ("10;58;51", "12:14.08"). A space alone is no amount's when another number follows ("30 06
# 2018" is a date).
_AMOUNT = re.compile(r"(?<![\d.,])(?<!\d[;:])\d+( ?[,;.] ?| (?!\d{2} \d))\d{2}(?!\d|[.,;:]\d)")
_TIME = re.compile(r"(?<![\d.,:;])(?:[01]?\d|2[0-3])([;:.,*])[0-5]\d([;:.,*])[0-5]\d(?!\d)")


@dataclass(frozen=True)
class _Run:
    """One character of the greedy reading: its class and the frames it was read from."""

    index: int  # class
    first: int  # frame
    last: int


def greedy_runs(probs: np.ndarray) -> list[_Run]:
    """The greedy path's characters (repeats merged, blanks dropped) with their frames."""
    best = probs.argmax(axis=-1)
    runs: list[_Run] = []
    previous = 0
    for frame, index in enumerate(best.tolist()):
        if index != 0 and index == previous:
            runs[-1] = _Run(index, runs[-1].first, frame)
        elif index != 0:
            runs.append(_Run(index, frame, frame))
        previous = index
    return runs


def ctc_log_likelihood(probs: np.ndarray, labels: Sequence[int]) -> float:
    """log P(labels | frames): the CTC forward algorithm over (T, C) probabilities, blank 0.

    Summed over every alignment (repeats, blanks between and around), so a reading is judged
    by all the ways the frames could spell it, not by the greedy path alone.
    """
    return float(ctc_log_likelihoods(probs, [labels])[0])


def ctc_log_likelihoods(probs: np.ndarray, spellings: Sequence[Sequence[int]]) -> np.ndarray:
    """``ctc_log_likelihood`` of each of several label sequences over the same frames, in one
    pass over the frames: the candidates for a part of a reading are scored together, since
    the loop over frames, not the arithmetic, is what costs."""
    lengths = np.array([len(labels) for labels in spellings], dtype=np.int64)
    steps, count = probs.shape[0], len(spellings)
    if steps == 0:
        return np.where(lengths == 0, 0.0, -np.inf)
    # Each spelling's states: blank, label, blank, ..., blank; shorter ones padded with states
    # no path reaches (the forward recursion only moves right, so they feed nothing).
    width = 2 * int(lengths.max()) + 1
    states = np.zeros((count, width), dtype=np.int64)
    for row, labels in enumerate(spellings):
        states[row, 1 : 2 * len(labels) : 2] = labels
    log_probs = np.log(np.maximum(probs[:, states], 1e-30))  # (T, count, width)
    log_probs[:, np.arange(width)[None, :] > 2 * lengths[:, None]] = -np.inf
    # A state may be reached from two back when it is a label unlike the one two back.
    skip = np.zeros((count, width), dtype=bool)
    skip[:, 2:] = (states[:, 2:] != 0) & (states[:, 2:] != states[:, :-2])
    alpha = np.full((count, width), -np.inf)
    alpha[:, :2] = log_probs[0, :, :2]
    for frame in range(1, steps):
        moved = alpha.copy()
        moved[:, 1:] = np.logaddexp(moved[:, 1:], alpha[:, :-1])
        jumped = np.logaddexp(moved[:, 2:], alpha[:, :-2])
        moved[:, 2:] = np.where(skip[:, 2:], jumped, moved[:, 2:])
        alpha = moved + log_probs[frame]
    rows = np.arange(count)
    last = alpha[rows, 2 * lengths]
    before = np.where(lengths > 0, alpha[rows, np.maximum(2 * lengths - 1, 0)], -np.inf)
    return np.logaddexp(last, before)


@functools.cache
def _case_fold(charset: Charset) -> tuple[dict[str, int], np.ndarray]:
    """Each character's case-free column, and the (classes, columns) 0/1 matrix that sums a
    letter's two cases into it; column 0 is the blank (CTC's one special class)."""
    columns: dict[str, int] = {}
    for index, name in enumerate(charset.classes):
        key = "" if index < len(charset.specials) else name.lower()
        columns.setdefault(key, len(columns))
    matrix = np.zeros((charset.num_class, len(columns)), dtype=np.float32)
    for index, name in enumerate(charset.classes):
        matrix[index, columns["" if index < len(charset.specials) else name.lower()]] = 1.0
    return columns, matrix


class _Reading:
    """A greedy reading with the frames of each character, and the case-free probabilities a
    candidate spelling is scored on (made the first time one is)."""

    def __init__(self, probs: np.ndarray, charset: Charset) -> None:
        self.runs = greedy_runs(probs)
        self.text = "".join(charset.classes[run.index] for run in self.runs)
        self.steps = probs.shape[0]
        self.fold, self._matrix = _case_fold(charset)
        self._probs = probs

    @functools.cached_property
    def folded(self) -> np.ndarray:
        return self._probs @ self._matrix

    def log_likelihoods(self, start: int, end: int, spellings: Sequence[str]) -> np.ndarray:
        """How well the frames between characters start-1 and end spell each of ``spellings``."""
        first = self.runs[start - 1].last + 1 if start > 0 else 0
        last = self.runs[end].first if end < len(self.runs) else self.steps
        labels = [[self.fold[char.lower()] for char in spelling] for spelling in spellings]
        return ctc_log_likelihoods(self.folded[first:last], labels)

    def _frame_probs(self, runs: Iterable[int]) -> np.ndarray:
        """The arg-max probability of every frame the greedy characters ``runs`` were read from."""
        frames = [f for r in runs for f in range(self.runs[r].first, self.runs[r].last + 1)]
        return self._probs[frames].max(axis=-1)

    def confidence(self, runs: Sequence[int]) -> float:
        """The greedy characters ``runs``'s confidence, as EasyOCR computes a crop's."""
        return ctc_confidence(self._frame_probs(runs))

    def spells(self, spelling: str) -> bool:
        return all(char.lower() in self.fold for char in spelling)

    def sure(self, start: int, end: int) -> bool:
        """Whether every frame of characters [start, end) gave its character at least SURE."""
        return bool(self._frame_probs(range(start, end)).min() >= SURE)

    def best(
        self,
        start: int,
        end: int,
        spellings: Sequence[str],
        max_odds: float,
        log_prior: Callable[[str], float] | None = None,
    ) -> str | None:
        """The most likely of ``spellings`` for characters [start, end), if it is within
        ``max_odds`` of what was read there; with a ``log_prior``, the most probable given
        the frames and the prior, and only if more probable than what was read."""
        read = self.text[start:end]
        others = [s for s in dict.fromkeys(spellings) if s != read and self.spells(s)]
        if not others:
            return None
        scores = self.log_likelihoods(start, end, [read, *others])
        within = scores[1:] > scores[0] - math.log(max_odds)
        if log_prior is not None:
            posterior = scores + np.array([log_prior(s) for s in [read, *others]])
            best = int(np.argmax(posterior[1:]))
            return others[best] if within[best] and posterior[1 + best] > posterior[0] else None
        best = int(np.argmax(scores[1:]))
        return others[best] if within[best] else None


def correct_reading(
    probs: np.ndarray,
    charset: Charset,
    lexicon: Lexicon | None,
    max_odds: float = MAX_ODDS,
    format_odds: float = FORMAT_MAX_ODDS,
    decimal_mark: str = Settings.str_decimal_mark,
    min_word_confidence: float = 0.0,
) -> str:
    """The greedy reading of (T, C) CTC probabilities with its words and formats corrected
    (with a ``lexicon``); an amount's separator becomes ``decimal_mark`` (STR_DECIMAL_MARK).
    Words the network read with a confidence under ``min_word_confidence`` are left out."""
    reading = _Reading(probs, charset)
    changes = (
        {}
        if lexicon is None
        else _corrections(reading, lexicon, max_odds, format_odds, decimal_mark)
    )
    pieces: list[tuple[str, int, int]] = []  # text, and the greedy characters it replaces
    done = 0
    for (start, end), spelling in sorted(changes.items()):
        if start >= done:  # changes never overlap; if one did, the first would stand
            pieces += [(char, i, i + 1) for i, char in enumerate(reading.text[done:start], done)]
            pieces.append((spelling, start, end))
            done = end
    pieces += [(char, i, i + 1) for i, char in enumerate(reading.text[done:], done)]
    if min_word_confidence > 0:
        return _without_doubtful_words(reading, pieces, min_word_confidence)
    return "".join(text for text, _, _ in pieces)


def _corrections(
    reading: _Reading, lexicon: Lexicon, max_odds: float, format_odds: float, decimal_mark: str
) -> dict[tuple[int, int], str]:
    """The changes to the greedy reading: characters [start, end) -> their new spelling."""
    text = reading.text
    changes: dict[tuple[int, int], str] = {}
    for match in _AMOUNT.finditer(text):
        _offer(reading, *match.span(1), [decimal_mark], format_odds, changes)
    for match in _TIME.finditer(text):
        for group in (1, 2):
            _offer(reading, *match.span(group), [":"], format_odds, changes)
    words = list(_WORD.finditer(text))
    for left, right in itertools.pairwise(words):
        _join_words(reading, left.span(), right.span(), lexicon, max_odds, changes)
    for match in words:
        start, end = match.span()
        if any(s <= start < e for s, e in changes) or not _free_word(text, start, end):
            continue
        if match.group() in lexicon:
            _prefer_common(reading, start, end, lexicon, max_odds, changes)
        else:
            _correct_word(reading, start, end, lexicon, max_odds, changes)
    for match in _AMPERSAND.finditer(text):
        _offer(reading, *match.span(), ["a"], max_odds, changes)
    for match in _MIXED.finditer(text):
        _correct_lookalikes(reading, *match.span(), lexicon, max_odds, changes)
    return changes


def _without_doubtful_words(
    reading: _Reading, pieces: Sequence[tuple[str, int, int]], min_confidence: float
) -> str:
    """The reading with each word (a whitespace token) whose greedy characters the network
    read with a confidence under ``min_confidence`` turned into spaces, so the words left keep
    their places along the crop; the ends trimmed once a word is gone."""
    chars = [(char, start, end) for text, start, end in pieces for char in text]
    out = [char for char, _, _ in chars]
    dropped = False
    word: list[int] = []
    for i, (char, _, _) in enumerate([*chars, (" ", 0, 0)]):
        if not char.isspace():
            word.append(i)
            continue
        if word:
            runs = sorted({run for j in word for run in range(chars[j][1], chars[j][2])})
            if reading.confidence(runs) < min_confidence:
                for j in word:
                    out[j] = " "
                dropped = True
            word = []
    text = "".join(out)
    return text.strip() if dropped else text


def _offer(
    reading: _Reading,
    start: int,
    end: int,
    spellings: Sequence[str],
    max_odds: float,
    changes: dict[tuple[int, int], str],
    log_prior: Callable[[str], float] | None = None,
) -> None:
    """The likeliest of ``spellings`` for characters [start, end) as a change, if the network
    gives it at least 1 / ``max_odds`` of what it read there (and, with a ``log_prior``, if it
    is the more probable given both); every correction ends here."""
    chosen = reading.best(start, end, spellings, max_odds, log_prior)
    if chosen is not None:
        changes[(start, end)] = chosen


def _join_words(
    reading: _Reading,
    left: tuple[int, int],
    right: tuple[int, int],
    lexicon: Lexicon,
    max_odds: float,
    changes: dict[tuple[int, int], str],
) -> None:
    """Two words with a space or an underscore between them, as one word where that is in the
    lexicon and one of the two is not ("Descr iption" of a letter-spaced heading), or as two
    words split by a space ("New_Competitive", an underline read)."""
    text = reading.text
    if text[left[1] : right[0]] not in (" ", "_"):
        return
    first, second = text[left[0] : left[1]], text[right[0] : right[1]]
    if (left[0] > 0 and text[left[0] - 1].isalnum()) or text[right[1] : right[1] + 1].isalnum():
        return
    spellings = []
    if first + second in lexicon and not (first in lexicon and second in lexicon):
        spellings.append(first + second)
    if text[left[1]] == "_":
        spellings.append(f"{first} {second}")
    _offer(reading, left[0], right[1], spellings, max_odds, changes)


def _abbreviation(token: str) -> bool:
    """Three capitals or fewer, with or without digits (SDN, GST, 1L, 5KG): on documents an
    abbreviation or a unit more often than a misread word."""
    return token.isupper() and sum(char.isalpha() for char in token) <= ABBREVIATION


def _free_word(text: str, start: int, end: int) -> bool:
    """Whether the letters [start, end) of ``text`` are a word a correction may touch: not an
    abbreviation (three capitals or fewer: SDN, GST) nor part of a code like "S0022A"."""
    if _abbreviation(text[start:end]):
        return False
    glued = (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum())
    return not glued


def _correct_word(
    reading: _Reading,
    start: int,
    end: int,
    lexicon: Lexicon,
    max_odds: float,
    changes: dict[tuple[int, int], str],
) -> None:
    """A word of its own (``_free_word``) that is not in the lexicon: its near words, and
    where a mark stands at its edge ("Tota)", "@THER"), the words that mark may be a letter of."""
    text = reading.text
    word = text[start:end]
    if len(word) < MIN_WORD - 1:
        return
    # A word one letter short may still be one with the mark at its edge ("&nd" for "and").
    alone = lexicon.candidates(word) if len(word) >= MIN_WORD else []
    spellings = [_cased(spelling, word) for spelling in alone]
    after = text[end : end + 1]
    if _is_mark(after) and not text[end + 1 : end + 2].isalnum():
        with_mark = [_cased(s, word) for s in lexicon.candidates(word + after)]
        if with_mark:
            spellings = [spelling + after for spelling in spellings] + with_mark
            end += 1
    before = text[start - 1 : start] if start > 0 else ""
    if _is_mark(before) and not text[max(0, start - 2) : start - 1].isalnum():
        with_mark = [_cased(s, word) for s in lexicon.candidates(before + word)]
        if with_mark:
            rest = text[start + len(word) : end]  # the mark after it, if that was taken too
            spellings = [before + spelling for spelling in spellings]
            spellings += [spelling + rest for spelling in with_mark]
            start -= 1
    _offer(reading, start, end, spellings, max_odds, changes)


def _prefer_common(
    reading: _Reading,
    start: int,
    end: int,
    lexicon: Lexicon,
    max_odds: float,
    changes: dict[tuple[int, int], str],
) -> None:
    """A word of its own (``_free_word``) in the list, read with a doubtful letter, as a far
    more common word one edit away where the frames and the words' counts together say so
    ("tor" -> "for", "Lid" -> "Ltd"): the network's likelihood times the list's count, a
    unigram language model."""
    word = reading.text[start:end]
    if len(word) < 2 or reading.sure(start, end):
        return
    spellings = [_cased(spelling, word) for spelling in lexicon.neighbours(word)]

    def log_prior(spelling: str) -> float:
        return math.log(lexicon.count(spelling))  # every word of the list counts at least 1

    _offer(reading, start, end, spellings, max_odds, changes, log_prior)


def _correct_lookalikes(
    reading: _Reading,
    start: int,
    end: int,
    lexicon: Lexicon,
    max_odds: float,
    changes: dict[tuple[int, int], str],
) -> None:
    """A token of letters and look-alike digits ("t0", "1ts") as the words its digits may be
    misread letters of. Codes are left alone: a token with more digits than letters ("A10",
    "t02"), or of three capitals or fewer ("1L", "5KG")."""
    token = reading.text[start:end]
    letters = sum(char.isalpha() for char in token)
    if letters < len(token) - letters or any(start < e and s < end for s, e in changes):
        return
    if _abbreviation(token):
        return
    if any(char.isdigit() and char not in LOOKALIKES for char in token):
        return  # a digit that looks like no letter: a code ("p3", "t2")
    choices = [LOOKALIKES[char] if char.isdigit() else char for char in token]
    spellings = ["".join(chars) for chars in itertools.product(*choices)]
    found = [_cased(spelling, token) for spelling in spellings if spelling.lower() in lexicon]
    _offer(reading, start, end, found, max_odds, changes)


def _is_mark(char: str) -> bool:
    return bool(char) and not char.isspace() and not char.isalnum()


def _cased(spelling: str, like: str) -> str:
    """``spelling`` in the case of the word it replaces: upper, capitalised or lower."""
    if like.isupper():
        return spelling.upper()
    if like[0].isupper():
        return spelling[0].upper() + spelling[1:]
    return spelling
