"""Class tables: the built-in sets match EasyOCR's and the official DTRB ones."""

from __future__ import annotations

import json

import pytest

from str_service.charsets import (
    DTRB_36,
    EASYOCR_EN_G2,
    CharsetError,
    make_charset,
)


def test_easyocr_english_classes_equal_the_reference(parity_dir):
    reference = json.loads((parity_dir / "easyocr_en_charset.json").read_text())
    charset = make_charset(97, "CTC")
    assert list(charset.classes[1:]) == reference["classes"][1:]
    assert charset.num_class == reference["num_class"] == 97


def test_english_set_has_96_distinct_characters_with_space_and_euro():
    assert len(EASYOCR_EN_G2) == len(set(EASYOCR_EN_G2)) == 96
    assert " " in EASYOCR_EN_G2 and "\u20ac" in EASYOCR_EN_G2


def test_dtrb_sets_add_blank_for_ctc_and_go_eos_for_attn():
    ctc = make_charset(37, "CTC")
    attn = make_charset(38, "Attn")
    assert ctc.characters == attn.characters == DTRB_36
    assert ctc.classes[:2] == ("[blank]", "0")
    assert attn.classes[:3] == ("[GO]", "[s]", "0")
    assert attn.lookup([0, 2, 12, 1]) == "0a"


def test_str_charset_overrides_and_must_fit_the_checkpoint():
    assert make_charset(4, "CTC", "abc").classes == ("[blank]", "a", "b", "c")
    with pytest.raises(CharsetError, match="STR_CHARSET"):
        make_charset(5, "CTC", "abc")
    with pytest.raises(CharsetError, match="STR_CHARSET"):
        make_charset(6000, "CTC")
