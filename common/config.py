"""Configuration from environment variables, with the defaults README documents.

Every service reads one ``Settings`` at start-up and passes it down; nothing reads os.environ
later, so a test can build any configuration without touching the process environment.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from common.documents import DocumentLimits
from common.profiles import PROFILES, Profile

DECIMAL_MARKS = (".", ",")  # STR_DECIMAL_MARK: what an amount's separator is corrected to


class ConfigError(ValueError):
    """A setting that can't be used; raised at start-up, naming the variable."""


@dataclass(frozen=True)
class Settings:
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    std_url: str = "http://127.0.0.1:5001"
    str_url: str = "http://127.0.0.1:5002"
    str_queue: str = "ocr.str.crops"
    str_max_batch: int = 350
    str_max_wait_ms: float = 50.0
    str_bucket_policy: str = "adaptive"
    str_max_crops: int = 500
    str_delivery_limit: int = 3
    str_max_queued_crops: int = 5000
    ocr_timeout_s: float = 60.0
    ocr_device: str = "auto"
    ocr_threads: int = 0
    ocr_profile: str = "fast"
    ocr_mode: str = "embedded"
    craft_weights: str | None = None
    str_weights: str | None = None
    str_arch: str | None = None
    str_charset: str | None = None
    str_lexicon: str | None = None
    str_decimal_mark: str = "."
    ocr_max_upload_mb: float = 20.0
    ocr_max_pixels: int = 50_000_000
    ocr_max_pages: int = 32
    ocr_pdf_dpi: float = 200.0
    # Jobs (jobs/): their database (SQLAlchemy URL: SQLite embedded, PostgreSQL distributed),
    # how long a job is kept, how many pages one may have, how often a page is tried, the
    # pages queue page workers consume, and how many pages a runner or page worker reads at once.
    ocr_jobs_db: str = "sqlite:///out/jobs.sqlite3"
    ocr_jobs_retention_h: float = 24.0
    ocr_jobs_max_pages: int = 10_000
    ocr_jobs_attempts: int = 3
    ocr_jobs_queue: str = "ocr.jobs.pages"
    ocr_jobs_concurrency: int = 2
    ocr_api_key: str | None = None
    ocr_max_inflight: int = 4
    ocr_max_detect_pixels: int = 1280 * 1280
    bind: str = "127.0.0.1"
    port: int = 0
    ocr_http_threads: int = 8
    ocr_client_timeout_s: float = 30.0
    metrics_port: int = 9100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its upper-case variable; unset or empty keeps the default."""
        env = os.environ if env is None else env
        values = {}
        for field in fields(cls):
            raw = env.get(field.name.upper(), "").strip()
            if raw:
                values[field.name] = _parse(field.name.upper(), raw, field.type)
        return cls(**values).validated()

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes).validated()

    def validated(self) -> Settings:
        checks = {
            "STR_MAX_BATCH": self.str_max_batch >= 1,
            "STR_MAX_WAIT_MS": self.str_max_wait_ms >= 0,
            "STR_BUCKET_POLICY": self.str_bucket_policy in ("adaptive", "fixed"),
            "STR_MAX_CROPS": self.str_max_crops >= 1,
            "STR_DECIMAL_MARK": self.str_decimal_mark in DECIMAL_MARKS,
            "OCR_TIMEOUT_S": self.ocr_timeout_s > 0,
            "OCR_DEVICE": self.ocr_device in ("auto", "cpu", "cuda")
            or self.ocr_device.startswith("cuda:"),
            "OCR_THREADS": self.ocr_threads >= 0,
            "OCR_PROFILE": self.ocr_profile in PROFILES,
            "OCR_MODE": self.ocr_mode in ("embedded", "distributed"),
            "OCR_MAX_UPLOAD_MB": self.ocr_max_upload_mb > 0,
            "OCR_MAX_PIXELS": self.ocr_max_pixels >= 1,
            "OCR_MAX_PAGES": self.ocr_max_pages >= 1,
            "OCR_PDF_DPI": 18 <= self.ocr_pdf_dpi <= 1200,
            "OCR_JOBS_DB": "://" in self.ocr_jobs_db,
            "OCR_JOBS_RETENTION_H": self.ocr_jobs_retention_h > 0,
            "OCR_JOBS_MAX_PAGES": self.ocr_jobs_max_pages >= 1,
            "OCR_JOBS_ATTEMPTS": self.ocr_jobs_attempts >= 1,
            "OCR_JOBS_CONCURRENCY": self.ocr_jobs_concurrency >= 1,
            "STR_DELIVERY_LIMIT": self.str_delivery_limit >= 1,
            "STR_MAX_QUEUED_CROPS": self.str_max_queued_crops >= 1,
            "OCR_MAX_INFLIGHT": self.ocr_max_inflight >= 1,
            "OCR_MAX_DETECT_PIXELS": self.ocr_max_detect_pixels >= 1,
            "PORT": 0 <= self.port <= 65535,
            "OCR_HTTP_THREADS": self.ocr_http_threads >= 1,
            "OCR_CLIENT_TIMEOUT_S": self.ocr_client_timeout_s > 0,
            "METRICS_PORT": 0 <= self.metrics_port <= 65535,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid value for {', '.join(bad)}")
        return self

    @property
    def profile(self) -> Profile:
        """The engine's behaviour named by OCR_PROFILE (common/profiles.py)."""
        return PROFILES[self.ocr_profile]

    @property
    def document_limits(self) -> DocumentLimits:
        """How an upload becomes pages: the pixel limit per page, the page limit per request,
        the PDF rendering resolution."""
        return DocumentLimits(self.ocr_max_pixels, self.ocr_max_pages, self.ocr_pdf_dpi)

    @property
    def job_limits(self) -> DocumentLimits:
        """A job's documents: the page limit is OCR_JOBS_MAX_PAGES, for all its files."""
        return DocumentLimits(self.ocr_max_pixels, self.ocr_jobs_max_pages, self.ocr_pdf_dpi)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.ocr_max_upload_mb * 1024 * 1024)

    @property
    def dead_letter_exchange(self) -> str:
        """Where the crops queue dead-letters what no worker can answer (``STR_QUEUE``.dlx)."""
        return f"{self.str_queue}.dlx"

    @property
    def jobs_dead_letter_exchange(self) -> str:
        return f"{self.ocr_jobs_queue}.dlx"

    @property
    def jobs_dead_letter_queue(self) -> str:
        """Pages no page worker could take (a malformed message) end up here."""
        return f"{self.ocr_jobs_queue}.dead"

    @property
    def dead_letter_queue(self) -> str:
        """Poison and repeatedly failing crop messages end up here (``STR_QUEUE``.dead)."""
        return f"{self.str_queue}.dead"


def _parse(name: str, raw: str, kind: object) -> object:
    text = str(kind)
    try:
        if text == "int":
            return int(raw)
        if text == "float":
            value = float(raw)
            if not math.isfinite(value):  # "inf" would pass the range checks, then break users
                raise ValueError(raw)
            return value
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    return raw
