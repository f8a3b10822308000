"""Readings corrected by the word list and number formats, on probabilities written by hand.

Each case spells a greedy reading frame by frame (a character, then a blank), with what else the
network found likely at a frame, and checks what the correction makes of it: a doubtful letter
becomes the word, a crisp one stays, an amount's comma becomes its point only where the frames
allow it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from str_service.charsets import CTC_BLANK, EASYOCR_EN_G2, Charset
from str_service.correction import (
    MAX_ODDS,
    correct_reading,
    ctc_log_likelihood,
    ctc_log_likelihoods,
    greedy_runs,
)
from str_service.lexicon import Lexicon, LexiconError

CHARSET = Charset(EASYOCR_EN_G2)
CLASS = {name: index for index, name in enumerate(CHARSET.classes)}


def frames(*steps: str | dict[str, float]) -> np.ndarray:
    """(T, C) probabilities: each step a character, or {char: p} for a doubtful one, then a
    blank frame. As in english_g2's output, a character's frame leaves the blank next to
    nothing (its median there is 5e-8), so a letter is never dropped for free."""
    rows = []
    for step in steps:
        row = np.full(len(CHARSET.classes), 1e-9)
        for char, p in ({step: 1.0} if isinstance(step, str) else step).items():
            row[CLASS[char]] = p
        blank = np.full(len(CHARSET.classes), 1e-9)
        blank[0] = 1.0
        rows += [row / row.sum(), blank / blank.sum()]
    return np.stack(rows)


@pytest.fixture(scope="module")
def english() -> Lexicon:
    return Lexicon.load(None)


def test_ctc_log_likelihood_sums_every_alignment():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=4)
    for labels in ([], [1], [1, 2], [1, 1], [2, 1, 2]):
        brute = 0.0
        for path in itertools.product(range(3), repeat=4):
            collapsed = [c for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c)]
            if collapsed == labels:
                brute += math.prod(probs[t, c] for t, c in enumerate(path))
        expected = math.log(brute) if brute else -math.inf
        assert ctc_log_likelihood(probs, labels) == pytest.approx(expected, abs=1e-9)


def test_spellings_of_different_lengths_are_scored_together_as_one_by_one():
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(4), size=6)
    spellings = [[1, 2, 3], [], [2], [1, 1], [3, 2, 1, 2, 3], [2, 2, 2]]
    together = ctc_log_likelihoods(probs, spellings)
    for labels, score in zip(spellings, together, strict=True):
        assert score == pytest.approx(ctc_log_likelihood(probs, labels), abs=1e-12)
    assert list(ctc_log_likelihoods(probs[:0], [[], [1]])) == [0.0, -math.inf]


def test_greedy_runs_keep_each_characters_frames():
    probs = frames("a", "b")
    runs = greedy_runs(np.concatenate([probs[:1], probs]))  # "a" held for two frames
    assert [(CHARSET.classes[r.index], r.first, r.last) for r in runs] == [("a", 0, 1), ("b", 3, 3)]


def test_a_doubtful_letter_becomes_the_word(english):
    probs = frames("a", "t", " ", "t", "h", {"c": 0.6, "e": 0.3})
    assert correct_reading(probs, CHARSET, english) == "at the"


def test_a_letter_the_network_ruled_out_stays(english):
    probs = frames("t", "h", {"c": 0.99, "e": 0.99 / MAX_ODDS / 10})
    assert correct_reading(probs, CHARSET, english) == "thc"


def test_a_digit_read_for_a_letter_of_a_word_becomes_the_letter(english):
    """english_g2 reads a sans-serif "o" as "0" and "i" as "1" ("t0", "1ts")."""
    probs = frames("g", "o", " ", "t", {"0": 0.7, "o": 0.3}, " ", {"1": 0.8, "i": 0.2}, "t", "s")
    assert correct_reading(probs, CHARSET, english) == "go to its"


def test_a_digit_the_network_was_sure_of_stays(english):
    probs = frames("t", {"0": 0.99, "o": 0.99 / MAX_ODDS / 10})
    assert correct_reading(probs, CHARSET, english) == "t0"


@pytest.mark.parametrize("code", ["A10", "t02", "p3", "1L", "S0022A"])
def test_codes_keep_their_digits(english, code):
    """More digits than letters, a digit like no letter, or three capitals or fewer: a code,
    even where the network found the letter likely too."""
    doubtful = {"0": {"0": 0.6, "o": 0.4}, "1": {"1": 0.6, "l": 0.4}}
    probs = frames(*[doubtful.get(char, char) for char in code])
    assert correct_reading(probs, CHARSET, english) == code


def test_a_doubtful_word_of_the_list_becomes_a_far_more_common_one(english):
    """ "tor" and "for" are both English; "for" is 1,800 times as common, so a doubtful "t"
    (the "f" at a tenth of its probability) reads "for", as does "Lid" for "Ltd"."""
    probs = frames({"t": 0.9, "f": 0.1}, "o", "r", " ", "L", {"i": 0.8, "t": 0.2}, "d")
    assert correct_reading(probs, CHARSET, english) == "for Ltd"


def test_a_word_of_the_list_the_frames_hold_to_stays(english):
    crisp = frames("t", "o", "r")
    assert correct_reading(crisp, CHARSET, english) == "tor"
    # Doubtful, but the "f" at 1e-5 of the "t": the counts' 1,800 to 1 don't outweigh it.
    against = frames({"t": 0.9, "o": 0.1}, {"o": 1.0}, "r")
    against[0, CLASS["f"]] = 0.9e-5
    assert correct_reading(against, CHARSET, english) == "tor"


def test_an_ampersand_in_prose_may_be_the_article(english):
    doubtful = {"&": 0.8, "a": 0.2}
    probs = frames(*"in ", doubtful, *" limited")
    assert correct_reading(probs, CHARSET, english) == "in a limited"
    crisp = frames(*"salt ", {"&": 0.99, "a": 1e-7}, *" pepper")
    assert correct_reading(crisp, CHARSET, english) == "salt & pepper"
    names = frames(*"BROWN ", doubtful, *" WILLIAMSON")
    assert correct_reading(names, CHARSET, english) == "BROWN & WILLIAMSON"


def test_a_crisp_word_outside_the_list_stays(english):
    assert "jalan" not in english
    assert correct_reading(frames(*list("JALAN")), CHARSET, english) == "JALAN"


def test_case_and_marks_are_kept(english):
    steps = [*list("Co"), {"r": 0.6, "n": 0.4}, *list("dition.")]
    assert correct_reading(frames(*steps), CHARSET, english) == "Condition."


def test_a_letter_read_as_a_mark(english):
    probs = frames(*list("Tota"), {")": 0.7, "l": 0.25}, " ", *list("QTY"))
    assert correct_reading(probs, CHARSET, english) == "Total QTY"


def test_words_run_together_are_split(english):
    steps = [*list("BID"), *list("REQUEST")]
    probs = frames(*steps)
    probs[5, CLASS[" "]] = 0.05  # the blank after D: a space was possible there
    assert correct_reading(probs, CHARSET, english) == "BID REQUEST"


def test_short_capitals_are_abbreviations(english):
    probs = frames("S", {"D": 0.6, "O": 0.35}, "N")
    assert correct_reading(probs, CHARSET, english) == "SDN"


def test_an_amount_gets_its_decimal_point(english):
    probs = frames("4", {",": 0.97, ".": 0.02}, "2", "0")
    assert correct_reading(probs, CHARSET, english) == "4.20"
    probs = frames("3", {" ": 0.9, ".": 0.05}, "0", "8")
    assert correct_reading(probs, CHARSET, english) == "3.08"
    # A comma the network was sure of, at 1e5 to 1 against the point: a format's odds are wider
    # than a word's.
    sure = frames("2", "0", "0", {",": 0.99, ".": 0.99 / 1e5}, "0", "0")
    assert correct_reading(sure, CHARSET, english) == "200.00"


def test_what_is_not_an_amount_keeps_its_comma(english):
    thousands = frames("1", {",": 0.6, ".": 0.3}, "2", "3", "4")
    assert correct_reading(thousands, CHARSET, english) == "1,234"
    ruled_out = frames("4", {",": 0.99, ".": 1e-9}, "2", "0")
    assert correct_reading(ruled_out, CHARSET, english) == "4,20"
    date = frames("3", "0", {" ": 0.9, ".": 0.05}, "0", "6", " ", *list("2018"))
    assert correct_reading(date, CHARSET, english) == "30 06 2018"


def test_documents_that_write_a_decimal_comma_keep_it(english):
    point_read = frames("4", {".": 0.9, ",": 0.05}, "2", "0")
    assert correct_reading(point_read, CHARSET, english, decimal_mark=",") == "4,20"
    space_read = frames("3", {" ": 0.9, ",": 0.05}, "0", "8")
    assert correct_reading(space_read, CHARSET, english, decimal_mark=",") == "3,08"
    thousands = frames("1", {".": 0.6, ",": 0.3}, "2", "3", "4")
    assert correct_reading(thousands, CHARSET, english, decimal_mark=",") == "1.234"


def test_a_clock_time_gets_its_colons(english):
    probs = frames("1", "0", {";": 0.8, ":": 0.15}, "5", "8", {";": 0.8, ":": 0.15}, "5", "1")
    assert correct_reading(probs, CHARSET, english) == "10:58:51"
    not_a_time = frames("2", "5", {";": 0.8, ":": 0.15}, "6", "1", {";": 0.8, ":": 0.15}, "0", "0")
    assert correct_reading(not_a_time, CHARSET, english) == "25;61;00"


def test_a_word_list_of_ones_own(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("Selangor 40\njalan\n\n")
    lexicon = Lexicon.load(str(path))
    assert len(lexicon) == 2
    assert "SELANGOR" in lexicon and "Jalan" in lexicon and "the" not in lexicon
    assert lexicon.candidates("Sclangor") == ["selangor"]
    probs = frames(*list("SCLANGOR"))
    probs[2, CLASS["C"]], probs[2, CLASS["E"]] = 0.6, 0.38
    assert correct_reading(probs, CHARSET, lexicon) == "SELANGOR"


def test_an_unreadable_word_list_names_itself(tmp_path):
    with pytest.raises(LexiconError, match="missing.txt"):
        Lexicon.load(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(LexiconError, match="holds no words"):
        Lexicon.load(str(empty))


def test_an_amount_read_with_spaces_closes_up(english):
    maybe_space = {" ": 0.6, CTC_BLANK: 0.4}
    probs = frames("2", "8", maybe_space, {".": 0.9, ",": 0.05}, maybe_space, "1", "1")
    assert correct_reading(probs, CHARSET, english) == "28.11"


def test_a_letter_read_as_a_mark_before_the_word(english):
    probs = frames({"@": 0.7, "O": 0.25}, *list("THER"), " ", *list("PAGES"))
    assert correct_reading(probs, CHARSET, english) == "OTHER PAGES"


def test_a_short_word_may_be_one_with_the_mark_before_it(english):
    # A thermal receipt's "and" read as "&nd": two letters alone are left as read, but with
    # the mark they spell a word the frames allow.
    probs = frames(*list("returns "), {"&": 0.8, "a": 0.15}, *list("nd"), " ", *list("more"))
    assert correct_reading(probs, CHARSET, english) == "returns and more"
    # A sure ampersand stays.
    crisp = frames(*list("B "), "&", *list("nd"))
    assert correct_reading(crisp, CHARSET, english) == "B &nd"


def test_a_word_read_in_two_parts_is_joined(english):
    # A letter-spaced heading: the network read a space it was not sure of.
    maybe_space = {" ": 0.6, CTC_BLANK: 0.4}
    probs = frames(*list("Descr"), maybe_space, *list("iption"))
    assert correct_reading(probs, CHARSET, english) == "Description"
    # Two words of the list stay two, however doubtful the space.
    probs = frames(*list("the"), maybe_space, *list("cat"))
    assert correct_reading(probs, CHARSET, english) == "the cat"


def test_an_underline_read_between_words_is_a_space(english):
    probs = frames(*list("New"), {"_": 0.7, " ": 0.25}, *list("Competitive"))
    assert correct_reading(probs, CHARSET, english) == "New Competitive"
    assert correct_reading(frames(*list("snake_case")), CHARSET, english) == "snake_case"


def test_a_word_the_network_was_unsure_of_is_left_out_in_its_place():
    # "Total 4.20 xq": the network was sure of the first two words, not of the scrawl after.
    doubt = [{"x": 0.3, "k": 0.25, "y": 0.25, "v": 0.2}, {"q": 0.4, "g": 0.3, "9": 0.3}]
    probs = frames(*list("Total 4.20 "), *doubt, " ", *list("due"))
    assert correct_reading(probs, CHARSET, None) == "Total 4.20 xq due"  # no word dropped
    # The words left keep their character offsets, so their boxes are found again.
    assert correct_reading(probs, CHARSET, None, min_word_confidence=0.2) == "Total 4.20    due"
    only_doubt = frames(*doubt)
    assert correct_reading(only_doubt, CHARSET, None, min_word_confidence=0.2) == ""


def test_a_corrected_word_is_judged_by_the_frames_it_was_read_from(english):
    # "Cordition" corrected to "Condition": its confidence is its own frames', one doubtful
    # letter among sure ones, so it stays; the ends are trimmed only once a word is gone.
    steps = [*list("Co"), {"r": 0.6, "n": 0.4}, *list("dition")]
    probs = frames(*steps)
    assert correct_reading(probs, CHARSET, english, min_word_confidence=0.2) == "Condition"
