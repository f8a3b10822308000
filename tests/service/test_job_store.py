"""The jobs store on the real PostgreSQL (a schema of the test's own) and on SQLite: the one schema
from the migrations, submit and idempotency, claims that only one caller wins, results that only
the holding claim may record, takeover, giving up, cancelling and expiry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from jobs.migrate import VERSION_TABLE, upgrade
from jobs.schema import metadata
from jobs.store import JobStore, Upload
from tests.service.conftest import postgres_schema

HOUR = timedelta(hours=1)


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
        upgrade(store.engine)
        yield store
        store.close()
        return
    with postgres_schema() as url:
        store = JobStore(url)
        upgrade(store.engine)
        yield store
        store.close()


def submit(store: JobStore, pages: int = 3, key: str | None = None):
    return store.submit([Upload(b"first", pages - 1), Upload(b"second", 1)], {}, HOUR, key)


def test_the_migrations_make_exactly_the_schema_the_code_declares(store: JobStore) -> None:
    upgrade(store.engine)  # a second upgrade is a no-op
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []


def test_a_job_is_stored_with_a_page_per_input_page_and_a_key_submits_once(store):
    job, created = submit(store, 3, key="order-17")
    assert created and job.status == "queued" and job.pages_total == 3
    again, created_again = submit(store, 3, key="order-17")
    assert not created_again and again.id == job.id
    assert store.waiting_pages() == [(job.id, 1), (job.id, 2), (job.id, 3)]
    assert store.input_data(job.id, 1) == b"second"
    assert [view.id for view in store.recent(10)] == [job.id]


def test_of_many_callers_racing_for_one_page_exactly_one_claims_it(store):
    job, _ = submit(store, 2)
    won = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        task = store.claim(job.id, 1, max_attempts=3)
        if task is not None:
            won.append(task)

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and won[0].attempts == 1
    assert store.job(job.id).status == "running"


def test_a_job_whose_last_pages_end_at_once_is_done(store):
    """Two workers recording a job's last two pages at the same moment: each transaction must
    see the other's page, or neither marks the job done and it stays running for ever (what
    two page workers did to a 20-page job before the job's row was locked first)."""
    for _ in range(20):
        job, _ = submit(store, 2)
        tasks = [store.claim(job.id, number, max_attempts=3) for number in (1, 2)]
        barrier = threading.Barrier(2)
        recorded: list[bool] = []

        def finish(task, barrier=barrier, recorded=recorded) -> None:
            barrier.wait()
            recorded.append(store.finish(task, {"text": ""}))

        threads = [threading.Thread(target=finish, args=(task,)) for task in tasks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        view = store.job(job.id)
        assert recorded == [True, True]
        assert (view.pages_done, view.status) == (2, "done")


def test_only_the_claim_holding_a_page_records_it_so_no_page_counts_twice(store):
    job, _ = submit(store, 2)
    first = store.claim(job.id, 1, max_attempts=3)
    assert store.claim(job.id, 1, max_attempts=3) is None  # running: not claimable
    # its worker died; the broker redelivers and another worker takes the page over
    second = store.claim(job.id, 1, max_attempts=3, takeover=True)
    assert second is not None and second.attempts == 2
    assert not store.finish(first, {"text": "stale"})  # the dead worker's late answer
    assert store.finish(second, {"text": "page one"})
    assert not store.finish(second, {"text": "again"})
    assert store.claim(job.id, 1, max_attempts=3, takeover=True) is None  # done stays done
    view = store.job(job.id)
    assert (view.pages_done, view.status) == (1, "running")
    last = store.claim(job.id, 2, max_attempts=3)
    assert store.finish(last, {"text": "page two"})
    view = store.job(job.id)
    assert (view.pages_done, view.pages_failed, view.status) == (2, 0, "done")
    results = [outcome.result for outcome in store.outcomes(job.id)]
    assert results == [{"text": "page one"}, {"text": "page two"}]


def test_a_page_that_keeps_killing_its_workers_fails_and_the_job_goes_on(store):
    job, _ = submit(store, 2)
    for _ in range(2):
        assert store.claim(job.id, 1, max_attempts=2, takeover=True) is not None
    assert store.claim(job.id, 1, max_attempts=2, takeover=True) is None  # gives up
    view = store.job(job.id)
    assert view.pages_failed == 1 and view.errors[0][0] == 1
    assert view.errors[0][1]["code"] == "page_failed"
    task = store.claim(job.id, 2, max_attempts=2)
    store.finish(task, {"text": "fine"})
    assert store.job(job.id).status == "done"  # with one page failed


def test_a_retry_puts_the_page_back_and_a_final_failure_records_its_error(store):
    job, _ = submit(store, 1)
    task = store.claim(job.id, 1, max_attempts=3)
    assert store.fail(task, {"code": "timeout", "message": "slow"}, retry=True)
    assert store.waiting_pages() == [(job.id, 1)]
    task = store.claim(job.id, 1, max_attempts=3)
    assert task.attempts == 2
    assert store.fail(task, {"code": "invalid_image", "message": "corrupt"}, retry=False)
    assert store.job(job.id).errors == ((1, {"code": "invalid_image", "message": "corrupt"}),)


def test_cancelling_stops_every_page_that_has_not_ended(store):
    job, _ = submit(store, 3)
    task = store.claim(job.id, 1, max_attempts=3)
    view = store.cancel(job.id)
    assert view.status == "cancelled"
    assert not store.finish(task, {"text": "too late"})
    assert store.waiting_pages() == []
    assert store.claim(job.id, 2, max_attempts=3) is None


def test_running_pages_of_a_dead_process_are_released_and_expired_jobs_deleted(store):
    job, _ = submit(store, 2)
    store.claim(job.id, 1, max_attempts=3)
    assert store.release_running() == 1
    assert store.waiting_pages() == [(job.id, 1), (job.id, 2)]
    old, _ = store.submit([Upload(b"x", 1)], {}, timedelta(seconds=-1))
    assert store.expire() == 1
    assert store.job(old.id) is None and store.job(job.id) is not None


def test_unpublished_pages_are_listed_until_marked(store):
    job, _ = submit(store, 2)
    assert store.unpublished_pages() == [(job.id, 1), (job.id, 2)]
    store.mark_published([(job.id, 1)])
    assert store.unpublished_pages() == [(job.id, 2)]
