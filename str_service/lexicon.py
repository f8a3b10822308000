"""The words a reading may be corrected to: a word list and the near matches of a misread word.

The recogniser reads characters, not words, and on noisy crops it writes "thc", "TQBACCQ",
"Cordition". A word list turns each into a few candidates ("the", "TOBACCO", "Condition"),
and ``str_service.correction`` keeps a candidate only where the network's own probabilities
allow it. Finding every word within two edits of a string is what SymSpell does fast (a
precomputed index of deletions); symspellpy is its maintained Python port, MIT-licensed, and
ships an English frequency list of 82,765 words, so the default needs no download. A word list
of your own (``STR_LEXICON``: one word per line, an optional count after it) replaces it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from symspellpy import SymSpell, Verbosity

# The list symspellpy ships: the intersection of SCOWL and Google Books n-gram counts.
ENGLISH = "frequency_dictionary_en_82_765.txt"
MAX_EDITS = 2
# SymSpell indexes the deletions of each word's first PREFIX letters only: 38 MB for the English
# list, against 143 MB at symspellpy's default of 7, and the same corrections on the dev set.
PREFIX = 5
SHORT_WORD = 5  # words shorter than this get one edit: two would make most of them anything
MIN_PART = 2  # the shortest half of a split ("BIDREQUEST" -> "bid request")


class LexiconError(ValueError):
    """The word list can't be read; the message names the file (STR_LEXICON)."""


class Lexicon:
    """Lower-case words and their near matches; built once per process beside the model."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._index = SymSpell(max_dictionary_edit_distance=MAX_EDITS, prefix_length=PREFIX)
        try:
            with self.path.open(encoding="utf-8") as handle:
                for line in handle:
                    parts = line.split()
                    if parts:
                        count = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 1
                        self._index.create_dictionary_entry(parts[0].lower(), count)
        except (OSError, UnicodeDecodeError) as error:
            message = f"STR_LEXICON: can't read the word list {self.path}: {error}"
            raise LexiconError(message) from None
        if not self._index.words:
            raise LexiconError(f"STR_LEXICON: the word list {self.path} holds no words")

    @classmethod
    def load(cls, path: str | None) -> Lexicon:
        """``path`` (STR_LEXICON), or the English list symspellpy ships when it is empty."""
        if path:
            return cls(path)
        with resources.as_file(resources.files("symspellpy") / ENGLISH) as english:
            return cls(english)

    def __contains__(self, word: str) -> bool:
        return word.lower() in self._index.words

    def __len__(self) -> int:
        return len(self._index.words)

    def count(self, word: str) -> int:
        """How often the list says ``word`` occurs (0 for a word it lacks)."""
        return self._index.words.get(word.lower(), 0)

    def neighbours(self, word: str) -> list[str]:
        """Lower-case words of the list one edit from ``word`` (not itself), no single letters."""
        lower = word.lower()
        return [term for term in self._near(lower, 1) if term != lower]

    def candidates(self, word: str) -> list[str]:
        """Lower-case words within one edit of ``word`` (two from SHORT_WORD letters on), and
        its splits into two known words, most frequent first; no single letters."""
        lower = word.lower()
        found = self._near(lower, MAX_EDITS if len(lower) >= SHORT_WORD else 1)
        splits = [
            f"{lower[:cut]} {lower[cut:]}"
            for cut in range(MIN_PART, len(lower) - MIN_PART + 1)
            if lower[:cut] in self._index.words and lower[cut:] in self._index.words
        ]
        return found + splits

    def _near(self, lower: str, edits: int) -> list[str]:
        """Words of the list within ``edits`` of ``lower``, most frequent first; no single
        letters, letters only."""
        return [
            item.term
            for item in self._index.lookup(lower, Verbosity.ALL, max_edit_distance=edits)
            if len(item.term) > 1 and item.term.isalpha()
        ]
