"""Forward-pass planning: which crops of one read share each call of the recognition network.

A BiLSTM reads the whole row, so padding a crop wider than its own W changes its output. Crops are
therefore grouped by exact padded width and only same-width crops share a forward pass; a
grouped result then equals the one-crop result (up to float rounding). These are forward passes
within one ``Recognizer.recognize`` call, not the bucket's batches, which gather crops of many
requests before that call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from common.config import Settings

# A memory guard for very wide crops (long lines): a forward pass never holds more input pixels
# than STR_MAX_BATCH crops of width 512 at height 64. Word crops (W <= 512) always fill passes of
# max_batch.
DEFAULT_MAX_BATCH_PIXELS = Settings.str_max_batch * 64 * 512
# On a CPU the BiLSTM runs fastest on forward passes of a few dozen crops (cache-sized); larger
# ones are slower per crop (monitoring/README.md: the CPU knee). A bucket batch of 350 is then
# read in several forward passes of at most this many input pixels: 32 crops 256 wide at height 64.
CPU_MAX_BATCH_PIXELS = 32 * 64 * 256


@dataclass(frozen=True)
class ForwardPlan:
    """Which crops share each forward pass, and how much of the input is padding."""

    passes: tuple[tuple[int, ...], ...]  # indices into the input list, one tuple per forward
    widths: tuple[int, ...]  # tensor width of each pass
    padding_pixels: int  # pixels filled with repeated columns, summed over passes
    content_pixels: int  # pixels of real (resized) image content

    @property
    def sizes(self) -> list[int]:
        return [len(p) for p in self.passes]


def plan_forward_passes(
    widths: Sequence[int],
    content_widths: Sequence[int],
    max_batch: int = Settings.str_max_batch,
    height: int = 64,
    max_batch_pixels: int | None = DEFAULT_MAX_BATCH_PIXELS,
) -> ForwardPlan:
    """Group crops by exact padded width, narrowest first, at most ``max_batch`` per pass.

    A group larger than the limit is split into near-equal parts (400 crops -> 200 + 200, not
    350 + 50) so no forward pass is a small leftover. ``max_batch_pixels`` lowers the limit for
    very wide crops so that one forward pass can't exhaust memory.
    """
    if len(widths) != len(content_widths):
        raise ValueError("widths and content_widths differ in length")
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    groups: dict[int, list[int]] = {}
    for index, width in enumerate(widths):
        groups.setdefault(int(width), []).append(index)
    passes: list[tuple[int, ...]] = []
    pass_widths: list[int] = []
    padding = content = 0
    for width in sorted(groups):
        members = groups[width]
        limit = max_batch
        if max_batch_pixels is not None:
            limit = max(1, min(limit, max_batch_pixels // (width * height)))
        parts = math.ceil(len(members) / limit)
        base, extra = divmod(len(members), parts)
        start = 0
        for part in range(parts):
            size = base + (1 if part < extra else 0)
            passes.append(tuple(members[start : start + size]))
            pass_widths.append(width)
            start += size
        for index in members:
            used = min(int(content_widths[index]), width)
            content += used * height
            padding += (width - used) * height
    return ForwardPlan(tuple(passes), tuple(pass_widths), padding, content)
