"""The chaos run's load: small pages of known words, sent by a careful client.

A careful client retries what the service says is passing (502 upstream_error, 503 overloaded,
504 timeout, no connection or no answer in time) a bounded number of times with back-off,
honouring Retry-After, and gives up on anything else. A request counts as succeeded only when
the words read back are the words drawn. It is lost when it got no answer at all, a wrong
reading, or a 5xx that is not the JSON error shape.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import requests
from PIL import Image, ImageDraw, ImageFont

from web.drawing import png_bytes

# Plain lowercase words the default recogniser reads reliably in a large clear font.
WORDS = (
    "house",
    "river",
    "green",
    "table",
    "music",
    "paper",
    "light",
    "water",
    "stone",
    "horse",
    "money",
    "north",
    "bread",
    "chair",
    "plant",
    "world",
)
RETRY_STATUS = frozenset({502, 503, 504})
FONT_SIZE = 44


def render_page(words: list[list[str]]) -> bytes:
    """PNG of ``words`` (lines of words) in black on white, well spaced."""
    font = ImageFont.load_default(size=FONT_SIZE)
    margin, gap, line_gap = 30, 50, 40
    sizes = [[font.getbbox(word) for word in line] for line in words]
    width = max(sum(b[2] for b in line) + gap * (len(line) - 1) for line in sizes) + 2 * margin
    line_h = max(b[3] for line in sizes for b in line)
    height = len(words) * line_h + (len(words) - 1) * line_gap + 2 * margin
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    y = margin
    for line, boxes in zip(words, sizes, strict=True):
        x = margin
        for word, box in zip(line, boxes, strict=True):
            draw.text((x, y), word, fill="black", font=font)
            x += box[2] + gap
        y += line_h + line_gap
    return png_bytes(image)


@dataclass(frozen=True)
class Page:
    index: int
    words: tuple[str, ...]  # in reading order
    png: bytes


def make_pages(count: int, seed: int = 7) -> list[Page]:
    """``count`` pages of two lines of two words each, deterministic for a given seed."""
    rng = random.Random(seed)
    pages = []
    for index in range(count):
        chosen = rng.sample(WORDS, 4)
        lines = [chosen[:2], chosen[2:]]
        pages.append(Page(index, tuple(chosen), render_page(lines)))
    return pages


@dataclass
class Outcome:
    """How one request ended, and what each attempt got."""

    page: int
    result: str = "pending"  # succeeded | failed_clear | lost
    attempts: list[str] = field(default_factory=list)  # "200", "503 overloaded", "no_answer: ..."
    detail: str = ""
    started_s: float = 0.0
    finished_s: float = 0.0


@dataclass(frozen=True)
class ClientConfig:
    url: str
    canvas_size: int = 640
    timeout_s: float = 45.0
    max_attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 8.0


def _error_code(response: requests.Response) -> str | None:
    """``code`` of a JSON error answer with code and message, else None."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(error, dict) and error.get("code") and error.get("message"):
        return str(error["code"])
    return None


def read_words(body: dict) -> list[str]:
    return [str(word.get("text", "")).strip().lower() for word in body.get("words", [])]


def send(page: Page, config: ClientConfig, clock_start: float) -> Outcome:
    """POST one page to /pipeline as a careful client would, and judge the answer."""
    outcome = Outcome(page.index, started_s=time.monotonic() - clock_start)
    session = requests.Session()
    delay = config.backoff_s
    try:
        for attempt in range(1, config.max_attempts + 1):
            last = attempt == config.max_attempts
            retry_after = 0.0
            try:
                response = session.post(
                    config.url + "/pipeline",
                    files={"image": (f"page{page.index}.png", page.png, "image/png")},
                    data={"canvas_size": str(config.canvas_size)},
                    timeout=config.timeout_s,
                )
            except requests.RequestException as exc:
                outcome.attempts.append(f"no_answer: {type(exc).__name__}")
                if last:
                    outcome.result, outcome.detail = "lost", f"no answer: {exc}"[:300]
                    return outcome
            else:
                if judge(outcome, page, response, last):
                    return outcome
                retry_after = _retry_after(response)
            time.sleep(min(max(delay, retry_after), config.max_backoff_s))
            delay *= 2
        return outcome
    finally:
        session.close()
        outcome.finished_s = time.monotonic() - clock_start


def judge(outcome: Outcome, page: Page, response: requests.Response, last: bool) -> bool:
    """Record one answer; True when the request is settled (no retry)."""
    code = _error_code(response)
    status = response.status_code
    outcome.attempts.append(f"{status} {code}" if code else str(status))
    if status == 200:
        try:
            got = read_words(response.json())
        except ValueError:
            outcome.result, outcome.detail = "lost", "200 without JSON"
            return True
        if got == list(page.words):
            outcome.result = "succeeded"
        else:
            outcome.result, outcome.detail = "lost", f"wrong words {got} != {list(page.words)}"
        return True
    if code is None:  # the contract says every error is JSON; anything else is a broken answer
        outcome.result, outcome.detail = "lost", f"{status} without the JSON error shape"
        return True
    if status in RETRY_STATUS and not last:
        return False
    outcome.result, outcome.detail = "failed_clear", f"{status} {code}: {_message(response)}"
    return True


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return ""


def _retry_after(response: requests.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", 0))
    except ValueError:
        return 0.0


def tally(outcomes: list[Outcome]) -> dict[str, object]:
    """Counts by result and by attempt answer, for the JSON report."""
    return {
        "results": dict(Counter(o.result for o in outcomes)),
        "attempts": dict(Counter(a.split(":")[0] for o in outcomes for a in o.attempts)),
        "retried_requests": sum(1 for o in outcomes if len(o.attempts) > 1),
    }
