"""How a job reaches the running app's parts (sessionmaker, bot, clock, settings) without globals.

The app factory builds one `JobRuntime` and installs it into its scheduler's executor
(`JobScheduler.install_runtime`). Whenever that executor starts a job, it sets the `ContextVar`
below for the job's task, so the job calls `job_runtime()` and gets the parts of the app that is
running it.

Why the executor and a ContextVar rather than the alternatives:

- a module-level registry (``RUNTIME = ...``) is an import-time global: two apps in one process
  (tests, the benchmark) would overwrite each other's;
- a ContextVar set once in ``BotApp.start()`` reaches a job only through the chain of timer
  callbacks APScheduler happens to create, which breaks as soon as a wakeup is triggered from
  another task or thread;
- job keyword arguments are pickled into the database, so the runtime can never travel in them;
- the executor belongs to exactly one scheduler, which belongs to exactly one app, and
  ``loop.create_task`` copies the current context at the moment the executor creates the job's
  task: every job run sees its own app's runtime and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.services.context import ServiceContext
from bot.services.registry import UseCases
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.delivery.sender import OutboxSender
    from bot.ports import Scheduler


@dataclass(frozen=True, slots=True)
class JobRuntime:
    """The running app's parts a job may use. Jobs receive ids; they look everything else up here."""

    settings: Settings
    bot: Bot
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    ctx: ServiceContext
    sender: OutboxSender
    scheduler: Scheduler

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """One transaction for the job, as the update middleware gives one to a handler.

        Outbox rows the job enqueued are sent at once after the commit.
        """
        uow = UnitOfWork(self.sessionmaker)
        async with uow:
            yield uow
        if uow.outbox_dirty:
            self.sender.wake()

    def use_cases(self, uow: UnitOfWork) -> UseCases:
        """The same services a handler calls, inside the job's unit of work."""
        return UseCases(uow, self.ctx)


_current: ContextVar[JobRuntime] = ContextVar("job_runtime")


def job_runtime() -> JobRuntime:
    """The runtime of the app whose scheduler is running the current job."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "job_runtime() is only available inside a job started by the app's scheduler "
            "(or inside `running_with(runtime)` in a test)"
        ) from None


@contextmanager
def running_with(runtime: JobRuntime) -> Iterator[None]:
    """Make ``runtime`` the current one for the code (and the tasks it creates) in this block."""
    token = _current.set(runtime)
    try:
        yield
    finally:
        _current.reset(token)
