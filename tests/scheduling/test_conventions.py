"""Job references, ids and arguments: the conventions that keep stored jobs valid across restarts."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.scheduling import JobPolicy, JobRefError, check_ids, job_id, job_ref, resolve_job, scheduled_job
from bot.scheduling.jobs import RELEASE_STALE_OUTBOX, release_stale_outbox
from storage.jobstore import is_memory_sqlite, sync_database_url
from tests.support.jobs import record_marker


@pytest.mark.parametrize(
    ("parts", "at", "expected"),
    [
        (("remind", "lead", 42), datetime(2026, 11, 26, 9, 0, tzinfo=UTC), "remind:lead:42:2026-11-26T09:00"),
        # the same instant written in Shanghai time gives the same id: ids carry UTC
        (
            ("remind", "lead", 42),
            datetime(2026, 11, 26, 17, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
            "remind:lead:42:2026-11-26T09:00",
        ),
        (("digest", "team", 7), datetime(2026, 11, 26, 9, 0, 30, tzinfo=UTC), "digest:team:7:2026-11-26T09:00:30"),
        (("outbox", "release-stale"), None, "outbox:release-stale"),
    ],
)
def test_job_ids_are_deterministic(parts: tuple[str | int, ...], at: datetime | None, expected: str) -> None:
    assert job_id(*parts, at=at) == expected
    assert job_id(*parts, at=at) == job_id(*parts, at=at)


def test_a_daylight_saving_fold_gives_two_runs_two_ids() -> None:
    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york, fold=0)  # 05:30 UTC
    second = datetime(2026, 11, 1, 1, 30, tzinfo=new_york, fold=1)  # 06:30 UTC, same wall time
    assert job_id("remind", "lead", 1, at=first) != job_id("remind", "lead", 1, at=second)


@pytest.mark.parametrize(
    ("parts", "at"),
    [
        ((), None),
        (("remind", "a:b"), None),
        (("remind", ""), None),
        (("remind", " lead"), None),
        (("remind", True), None),
        (("remind", 1.5), None),
        (("remind",), datetime(2026, 11, 26, 9, 0)),  # naive: which 09:00?
        (("x" * 200,), None),
    ],
)
def test_bad_job_ids_are_refused(parts: tuple[object, ...], at: datetime | None) -> None:
    with pytest.raises(JobRefError):
        job_id(*parts, at=at)  # type: ignore[arg-type]


@given(
    st.lists(st.one_of(st.integers(), st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)), min_size=1, max_size=5)
)
def test_job_id_parts_read_back(parts: list[int | str]) -> None:
    assert job_id(*parts).split(":") == [str(p) for p in parts]


def test_the_apps_jobs_resolve_with_their_declared_policy() -> None:
    func, policy = resolve_job(RELEASE_STALE_OUTBOX)
    assert func is release_stale_outbox
    assert policy == JobPolicy(misfire_grace_time=50, coalesce=True, max_instances=1)
    assert job_ref(release_stale_outbox) == RELEASE_STALE_OUTBOX
    assert job_ref(record_marker) == "tests.support.jobs:record_marker"


@pytest.mark.parametrize(
    "ref",
    [
        "tests.support.jobs.record_marker",  # a dot where the colon belongs
        "tests.support.jobs:",
        ":record_marker",
        "tests.support.jobs:record_marker.__call__",
        "tests.support.nowhere:record_marker",
        "tests.support.jobs:missing",
        "tests.support.jobs:not_a_job",  # async, but nobody chose its misfire policy
        "tests.support.jobs:sync_function",
    ],
)
def test_bad_job_references_are_refused(ref: str) -> None:
    with pytest.raises(JobRefError):
        resolve_job(ref)


def test_only_async_functions_can_be_jobs() -> None:
    def plain() -> None:
        return None

    with pytest.raises(JobRefError):
        scheduled_job(misfire_grace_time=10, coalesce=True)(plain)  # type: ignore[type-var]


@pytest.mark.parametrize(
    "policy",
    [{"misfire_grace_time": 0, "coalesce": True}, {"misfire_grace_time": 5, "coalesce": True, "max_instances": 0}],
)
def test_policies_must_make_sense(policy: dict[str, int | bool]) -> None:
    with pytest.raises(JobRefError):
        JobPolicy(**policy)  # type: ignore[arg-type]


def test_job_arguments_are_ids_only() -> None:
    assert check_ids({"lead_id": 42, "day": "2026-11-26"}) == {"lead_id": 42, "day": "2026-11-26"}
    for bad in (object(), 1.5, True, None, datetime.now(UTC), timedelta(1), [1], {"id": 1}):
        with pytest.raises(JobRefError):
            check_ids({"lead_id": bad})
    with pytest.raises(JobRefError):
        check_ids({"LeadId": 1})
    pickle.dumps(check_ids({"partner_id": 1, "code": "abc"}))


@pytest.mark.parametrize(
    ("url", "sync"),
    [
        ("sqlite+aiosqlite:///./data/partner_assistant.db", "sqlite:///./data/partner_assistant.db"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("postgresql+asyncpg://bot@db:5432/partners", "postgresql+psycopg://bot@db:5432/partners"),
        (
            "postgresql+asyncpg://bot:pw@db/partners?ssl=require",
            "postgresql+psycopg://bot:pw@db/partners?sslmode=require",
        ),
    ],
)
def test_the_job_store_gets_a_sync_url_for_the_same_database(url: str, sync: str) -> None:
    assert sync_database_url(url).render_as_string(hide_password=False) == sync


def test_in_memory_sqlite_is_recognised() -> None:
    assert is_memory_sqlite("sqlite+aiosqlite:///:memory:")
    assert is_memory_sqlite("sqlite+aiosqlite://")
    assert not is_memory_sqlite("sqlite+aiosqlite:///./data/x.db")
