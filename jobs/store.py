"""The jobs' state in a database (PostgreSQL or SQLite, through SQLAlchemy Core).

Every change of state is one guarded UPDATE, so the database, not a process, decides who owns a
page: a page is claimed only while it is queued (or its claim went stale: the process that held
it died), and it is finished only by the claim that holds it, so no page is counted twice even
when a page worker is killed mid-page and another takes the page over.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from common.config import Settings
from jobs.migrate import upgrade
from jobs.schema import inputs, jobs, pages

TERMINAL = ("done", "failed", "cancelled")


def now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Upload:
    """One file of a job as submitted, with the page count its checks found."""

    data: bytes
    pages: int


@dataclass(frozen=True)
class JobView:
    """A job as a client follows it."""

    id: str
    status: str
    pages_total: int
    pages_done: int
    pages_failed: int
    errors: tuple[tuple[int, dict], ...]  # (page number, {code, message})
    created_at: datetime
    updated_at: datetime
    expires_at: datetime

    def export(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "pages_total": self.pages_total,
            "pages_done": self.pages_done,
            "pages_failed": self.pages_failed,
            "errors": [{"page": number, **error} for number, error in self.errors],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class PageTask:
    """A claimed page: where it is in the job's inputs, and which claim this is."""

    job_id: str
    number: int
    input_position: int
    input_page: int
    attempts: int  # this claim's attempt; only it may finish the page
    options: dict[str, Any]


@dataclass(frozen=True)
class PageOutcome:
    """A page's end: its result or its error (exports), or neither while it is not done."""

    number: int
    status: str
    result: dict | None
    error: dict | None


class JobStore:
    """The jobs database: submit, follow, claim and finish pages, cancel, expire."""

    def __init__(self, url: str, **engine_args: Any) -> None:
        self.engine: Engine = create_engine(url, **engine_args)
        if self.engine.dialect.name == "sqlite":
            database = self.engine.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobStore:
        """The store OCR_JOBS_DB names, its schema brought up to date."""
        store = cls(settings.ocr_jobs_db)
        upgrade(store.engine)
        return store

    def close(self) -> None:
        self.engine.dispose()

    def submit(
        self,
        uploads: Sequence[Upload],
        options: dict[str, Any],
        retention: timedelta,
        idempotency_key: str | None = None,
    ) -> tuple[JobView, bool]:
        """Store a job with its inputs and one queued row per page; ``(job, created)``. A key
        seen before returns that job, unchanged, with ``created`` False."""
        if idempotency_key:
            existing = self._job_by_key(idempotency_key)
            if existing is not None:
                return existing, False
        job_id = uuid.uuid4().hex
        at = now()
        page_rows = []
        for position, upload in enumerate(uploads):
            for index in range(upload.pages):
                page_rows.append(
                    {
                        "job_id": job_id,
                        "number": len(page_rows) + 1,
                        "input_position": position,
                        "input_page": index,
                        "status": "queued",
                        "attempts": 0,
                        "published": False,
                        "updated_at": at,
                    }
                )
        try:
            with self.engine.begin() as db:
                db.execute(
                    insert(jobs).values(
                        id=job_id,
                        status="queued",
                        idempotency_key=idempotency_key or None,
                        options=json.dumps(options),
                        pages_total=len(page_rows),
                        created_at=at,
                        updated_at=at,
                        expires_at=at + retention,
                    )
                )
                db.execute(
                    insert(inputs),
                    [
                        {"job_id": job_id, "position": i, "data": upload.data}
                        for i, upload in enumerate(uploads)
                    ],
                )
                db.execute(insert(pages), page_rows)
        except IntegrityError:  # the same key, submitted at the same moment by another request
            existing = self._job_by_key(idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing, False
        view = self.job(job_id)
        assert view is not None
        return view, True

    def job(self, job_id: str) -> JobView | None:
        with self.engine.connect() as db:
            row = db.execute(select(jobs).where(jobs.c.id == job_id)).first()
            return None if row is None else self._view(db, row)

    def recent(self, limit: int) -> list[JobView]:
        with self.engine.connect() as db:
            rows = db.execute(select(jobs).order_by(jobs.c.created_at.desc()).limit(limit))
            return [self._view(db, row) for row in rows.all()]

    def cancel(self, job_id: str) -> JobView | None:
        """Cancel a job that has not ended: its waiting and running pages stop counting."""
        at = now()
        with self.engine.begin() as db:
            changed = db.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.not_in(TERMINAL))
                .values(status="cancelled", updated_at=at)
            ).rowcount
            if changed:
                db.execute(
                    update(pages)
                    .where(pages.c.job_id == job_id, pages.c.status.in_(("queued", "running")))
                    .values(status="cancelled", updated_at=at)
                )
        return self.job(job_id)

    def waiting_pages(self, limit: int | None = None) -> list[tuple[str, int]]:
        """(job id, page number) of queued pages of live jobs, oldest job first."""
        query = (
            select(pages.c.job_id, pages.c.number)
            .join(jobs, jobs.c.id == pages.c.job_id)
            .where(jobs.c.status.in_(("queued", "running")), pages.c.status == "queued")
            .order_by(jobs.c.created_at, pages.c.number)
        )
        with self.engine.connect() as db:
            rows = db.execute(query if limit is None else query.limit(limit)).all()
        return [(row.job_id, row.number) for row in rows]

    def claim(
        self, job_id: str, number: int, max_attempts: int, takeover: bool = False
    ) -> PageTask | None:
        """Page ``number`` of ``job_id``, now this caller's to read; None when it isn't to be
        read (done, cancelled, failed, or another caller's).

        A queued page is claimed; with ``takeover`` (the broker redelivered the page: its
        worker's connection is gone) a running one too. A page claimed ``max_attempts`` times
        already is marked failed instead: a page that kills its workers must not kill them
        all. The claim is one guarded UPDATE, so of two callers racing for a page exactly one
        wins, on PostgreSQL and SQLite alike, and a page is never read for the job twice over.
        """
        at = now()
        claimable = ("queued", "running") if takeover else ("queued",)
        with self.engine.begin() as db:
            _lock_job(db, job_id)
            row = db.execute(
                select(pages.c.attempts, pages.c.input_position, pages.c.input_page, jobs.c.options)
                .join(jobs, jobs.c.id == pages.c.job_id)
                .where(
                    pages.c.job_id == job_id,
                    pages.c.number == number,
                    pages.c.status.in_(claimable),
                    jobs.c.status.in_(("queued", "running")),
                )
            ).first()
            if row is None:
                return None
            mine = and_(
                pages.c.job_id == job_id,
                pages.c.number == number,
                pages.c.attempts == row.attempts,
                pages.c.status.in_(claimable),
            )
            if row.attempts >= max_attempts:
                error = {"code": "page_failed", "message": _gave_up(row.attempts)}
                ended = db.execute(
                    update(pages)
                    .where(mine)
                    .values(status="failed", error=json.dumps(error), updated_at=at)
                ).rowcount
                if ended:
                    self._settle(db, job_id, at)
                return None
            won = db.execute(
                update(pages)
                .where(mine)
                .values(status="running", attempts=row.attempts + 1, updated_at=at)
            ).rowcount
            if not won:
                return None
            db.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == "queued")
                .values(status="running", updated_at=at)
            )
        return PageTask(
            job_id,
            number,
            row.input_position,
            row.input_page,
            row.attempts + 1,
            json.loads(row.options),
        )

    def unpublished_pages(self) -> list[tuple[str, int]]:
        """(job id, page number) of queued pages not yet on the pages queue, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(
                select(pages.c.job_id, pages.c.number)
                .join(jobs, jobs.c.id == pages.c.job_id)
                .where(
                    jobs.c.status.in_(("queued", "running")),
                    pages.c.status == "queued",
                    pages.c.published.is_(False),
                )
                .order_by(jobs.c.created_at, pages.c.number)
            ).all()
        return [(row.job_id, row.number) for row in rows]

    def mark_published(self, published: Sequence[tuple[str, int]]) -> None:
        by_job: dict[str, list[int]] = {}
        for job_id, number in published:
            by_job.setdefault(job_id, []).append(number)
        with self.engine.begin() as db:
            for job_id, numbers in by_job.items():
                db.execute(
                    update(pages)
                    .where(pages.c.job_id == job_id, pages.c.number.in_(numbers))
                    .values(published=True)
                )

    def release_running(self) -> int:
        """Put every running page back in the queue: for the one process that owns an
        embedded database, at start-up, when its previous life died mid-page."""
        with self.engine.begin() as db:
            return db.execute(
                update(pages)
                .where(pages.c.status == "running")
                .values(status="queued", updated_at=now())
            ).rowcount

    def input_data(self, job_id: str, position: int) -> bytes:
        with self.engine.connect() as db:
            return db.execute(
                select(inputs.c.data).where(
                    inputs.c.job_id == job_id, inputs.c.position == position
                )
            ).scalar_one()

    def finish(self, task: PageTask, result: dict) -> bool:
        """Record a page's result; False when this claim no longer holds the page (the job
        was cancelled, or the claim went stale and another took the page over)."""
        return self._end(task, "done", result=json.dumps(result))

    def fail(self, task: PageTask, error: dict, retry: bool) -> bool:
        """Record a failed attempt: the page waits for another try (``retry``), or fails
        with ``error`` ({code, message})."""
        if retry:
            return self._end(task, "queued")
        return self._end(task, "failed", error=json.dumps(error))

    def outcomes(self, job_id: str) -> list[PageOutcome]:
        with self.engine.connect() as db:
            rows = db.execute(
                select(pages.c.number, pages.c.status, pages.c.result, pages.c.error)
                .where(pages.c.job_id == job_id)
                .order_by(pages.c.number)
            ).all()
        return [
            PageOutcome(
                row.number,
                row.status,
                json.loads(row.result) if row.result else None,
                json.loads(row.error) if row.error else None,
            )
            for row in rows
        ]

    def inputs_of(self, job_id: str) -> list[bytes]:
        with self.engine.connect() as db:
            rows = db.execute(
                select(inputs.c.data).where(inputs.c.job_id == job_id).order_by(inputs.c.position)
            )
            return [row.data for row in rows]

    def expire(self) -> int:
        """Delete the jobs past their retention, inputs and pages with them."""
        with self.engine.begin() as db:
            return db.execute(delete(jobs).where(jobs.c.expires_at < now())).rowcount

    def counts_by_status(self) -> dict[str, int]:
        with self.engine.connect() as db:
            rows = db.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
            return {status: count for status, count in rows.all()}

    def _end(self, task: PageTask, status: str, **values: Any) -> bool:
        at = now()
        with self.engine.begin() as db:
            _lock_job(db, task.job_id)
            ended = db.execute(
                update(pages)
                .where(
                    pages.c.job_id == task.job_id,
                    pages.c.number == task.number,
                    pages.c.status == "running",
                    pages.c.attempts == task.attempts,
                )
                .values(status=status, updated_at=at, **values)
            ).rowcount
            if ended:
                self._settle(db, task.job_id, at)
        return bool(ended)

    def _settle(self, db, job_id: str, at: datetime) -> None:
        """A job whose pages have all ended is done (failed when not one page was read)."""
        left = db.execute(
            select(func.count())
            .select_from(pages)
            .where(pages.c.job_id == job_id, pages.c.status.in_(("queued", "running")))
        ).scalar_one()
        if left:
            db.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.not_in(TERMINAL))
                .values(updated_at=at)
            )
            return
        done = db.execute(
            select(func.count())
            .select_from(pages)
            .where(pages.c.job_id == job_id, pages.c.status == "done")
        ).scalar_one()
        db.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.not_in(TERMINAL))
            .values(status="done" if done else "failed", updated_at=at)
        )

    def _job_by_key(self, key: str) -> JobView | None:
        with self.engine.connect() as db:
            row = db.execute(select(jobs).where(jobs.c.idempotency_key == key)).first()
            return None if row is None else self._view(db, row)

    def _view(self, db, row) -> JobView:
        counts = dict(
            db.execute(
                select(pages.c.status, func.count())
                .where(pages.c.job_id == row.id)
                .group_by(pages.c.status)
            ).all()
        )
        errors = db.execute(
            select(pages.c.number, pages.c.error)
            .where(pages.c.job_id == row.id, pages.c.status == "failed")
            .order_by(pages.c.number)
        ).all()
        return JobView(
            row.id,
            row.status,
            row.pages_total,
            counts.get("done", 0),
            counts.get("failed", 0),
            tuple((number, json.loads(error)) for number, error in errors),
            _utc(row.created_at),
            _utc(row.updated_at),
            _utc(row.expires_at),
        )


def _lock_job(db, job_id: str) -> None:
    """Take the job's row before its pages, in every transaction that changes them (cancel
    updates it first): two workers recording a job's last two pages then run one after the
    other, and the second sees the first's page when it counts what is left (under PostgreSQL's
    read committed, each saw the other's as still running and neither ended the job). One
    order, job then pages, also keeps them from deadlocking. SQLite has no row locks and needs
    none: its writers take turns from their first write to their commit."""
    db.execute(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update())


def _gave_up(attempts: int) -> str:
    return f"the page was tried {attempts} times and never finished (its worker stopped)"


def _sqlite_pragmas(connection, _record) -> None:
    """SQLite enforces foreign keys (inputs and pages go with their job) only when asked, and
    waits for a writer instead of failing while another thread commits."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
