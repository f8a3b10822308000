"""Request parameters: the contract's typed parameters, and the one parser of request values.

The HTTP layer (and the command-line tools) call ``parse_fields`` to turn form strings and JSON
scalars into a frozen dataclass such as ``DetectionParams``; the engine then only ever sees ints,
floats and bools, and the dataclass checks their ranges.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from common.errors import InvalidParameter

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f"})


def parse_fields(cls: type[T], values: Mapping[str, Any], base: T | None = None) -> T:
    """An instance of the dataclass ``cls`` with the fields found in ``values``, over ``base``.

    Keys that are not fields are ignored (the same mapping carries the image); a missing or empty
    value keeps the base value. Each value is converted to its field's annotated type (bool, int
    or float); one that can't be raises InvalidParameter naming the field. The result's own
    ``validate()``, when it has one, then checks ranges.
    """
    base = base if base is not None else cls()
    changes: dict[str, Any] = {}
    for name, parse in _field_parsers(cls):
        raw = values.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        changes[name] = parse(name, raw)
    parsed = replace(base, **changes)  # type: ignore[type-var]
    validate = getattr(parsed, "validate", None)
    return validate() if validate is not None else parsed


@functools.cache
def _field_parsers(cls: type) -> tuple[tuple[str, Callable[[str, object], Any]], ...]:
    """Each field's name and the parser of its type, worked out once per class (not per
    request: resolving the string annotations is the costly part)."""
    hints = typing.get_type_hints(cls)
    return tuple((field.name, _PARSERS[hints[field.name]]) for field in fields(cls))


def parse_float(name: str, raw: object) -> float:
    if isinstance(raw, bool):
        raise InvalidParameter(f"{name} must be a number, got {raw!r}")
    try:
        return float(raw.strip() if isinstance(raw, str) else raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParameter(f"{name} must be a number, got {raw!r}") from None


def parse_int(name: str, raw: object) -> int:
    value = parse_float(name, raw)
    if not math.isfinite(value) or not value.is_integer():
        raise InvalidParameter(f"{name} must be an integer, got {raw!r}")
    return int(value)


def parse_bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InvalidParameter(f"{name} must be true or false, got {raw!r}")


_PARSERS = {bool: parse_bool, int: parse_int, float: parse_float}


@dataclass(frozen=True)
class DetectionParams:
    """Detection settings; the defaults are the official CRAFT test defaults (the profiles in
    common.profiles start from their own)."""

    canvas_size: int = 1280
    mag_ratio: float = 1.5
    text_threshold: float = 0.7
    link_threshold: float = 0.4
    low_text: float = 0.4
    poly: bool = False
    # > 0: detect at the scale that makes the page's smaller words (the first quartile of word
    # heights) this many pixels tall on CRAFT's canvas, found by a low-resolution first pass
    # (std_service.scale), never above the official scale; 0: the official scale (canvas_size,
    # mag_ratio).
    text_height: float = 0.0
    # Also box the characters CRAFT misses when they stand alone (a receipt's quantity "1"): ink
    # on a detected line that no box covers, on print on paper only (std_service.glyphs).
    lone_glyphs: bool = False

    def validate(self) -> DetectionParams:
        """Raise InvalidParameter (400 invalid_parameter) naming the first bad value."""
        if isinstance(self.canvas_size, bool) or not isinstance(self.canvas_size, int):
            raise InvalidParameter(f"canvas_size must be an integer, got {self.canvas_size!r}")
        if not 32 <= self.canvas_size <= 4096:
            raise InvalidParameter(f"canvas_size must be in 32..4096, got {self.canvas_size}")
        _check_float("mag_ratio", self.mag_ratio, 0.1, 5.0, low_open=False)
        for name in ("text_threshold", "link_threshold", "low_text"):
            _check_float(name, getattr(self, name), 0.0, 1.0, low_open=True)
        _check_float("text_height", self.text_height, 0.0, 200.0, low_open=False)
        for name in ("poly", "lone_glyphs"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidParameter(f"{name} must be true or false, got {getattr(self, name)!r}")
        return self


def _check_float(name: str, value: object, low: float, high: float, *, low_open: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{name} must be a number, got {value!r}")
    ok = math.isfinite(value) and value <= high and (value > low if low_open else value >= low)
    if not ok:
        interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise InvalidParameter(f"{name} must be in {interval}, got {value!r}")
