"""Character sets: which string each network output class stands for.

A checkpoint stores only weights, so the class-to-character table has to come from the model's
family: EasyOCR's ``english_g2`` (96 characters + the CTC blank), the official DTRB
case-insensitive 36 characters, or a user's own string (``STR_CHARSET``).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

# EasyOCR builds its recogniser's class list from the model's ``characters`` string. For
# english_g2 that is its digits, its symbol string (ending in a space), the euro sign, then
# upper- before lower-case letters -- note: not ``en_char`` (lower first), which EasyOCR only
# uses to decide which classes to ignore (none for English).
NUMBER = "0123456789"
SYMBOL = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ "
EURO = "\u20ac"
EASYOCR_EN_G2 = NUMBER + SYMBOL + EURO + string.ascii_uppercase + string.ascii_lowercase

# The official DTRB checkpoints were trained case-insensitive (``--sensitive`` off).
DTRB_36 = "0123456789abcdefghijklmnopqrstuvwxyz"

CTC_BLANK = "[blank]"
ATTN_GO = "[GO]"
ATTN_EOS = "[s]"


class CharsetError(ValueError):
    """Charset and checkpoint disagree; the message says how to fix it (STR_CHARSET)."""


@dataclass(frozen=True)
class Charset:
    """The characters of a model plus the special classes its head adds.

    CTC: class 0 is the blank, class i > 0 is ``characters[i - 1]``.
    Attn: class 0 is [GO], class 1 is [s] (end of sequence), class i > 1 is ``characters[i - 2]``.
    """

    characters: str
    prediction: str = "CTC"

    @property
    def specials(self) -> tuple[str, ...]:
        return (CTC_BLANK,) if self.prediction == "CTC" else (ATTN_GO, ATTN_EOS)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.specials + tuple(self.characters)

    @property
    def num_class(self) -> int:
        return len(self.specials) + len(self.characters)

    def lookup(self, indices: list[int]) -> str:
        """Join the characters of non-special class indices."""
        offset = len(self.specials)
        return "".join(self.characters[i - offset] for i in indices if i >= offset)


def default_characters(num_class: int, prediction: str) -> str:
    """The characters a checkpoint with ``num_class`` outputs most likely uses."""
    specials = 1 if prediction == "CTC" else 2
    for candidate in (EASYOCR_EN_G2, DTRB_36):
        if len(candidate) + specials == num_class:
            return candidate
    raise CharsetError(
        f"no built-in character set fits a {prediction} model with {num_class} classes "
        f"(built-in: EasyOCR english_g2 = {len(EASYOCR_EN_G2)} characters, DTRB = "
        f"{len(DTRB_36)}); set STR_CHARSET to the model's {num_class - specials} characters "
        "in class order"
    )


def make_charset(num_class: int, prediction: str, characters: str | None = None) -> Charset:
    """Charset for a checkpoint: ``characters`` (``STR_CHARSET``) if given, else the default."""
    chars = default_characters(num_class, prediction) if characters is None else characters
    charset = Charset(chars, prediction)
    if charset.num_class != num_class:
        raise CharsetError(
            f"STR_CHARSET has {len(chars)} characters, so a {prediction} head would need "
            f"{charset.num_class} classes, but the checkpoint has {num_class}"
        )
    return charset
