#!/usr/bin/env python3
"""Partner Assistant entry point.

python run_bot.py                 long polling with BOT_TOKEN; the terminal sandbox without one
python run_bot.py --webhook       serve the webhook (WEBHOOK_URL, WEBHOOK_SECRET)
python run_bot.py migrate         apply database migrations and exit
python run_bot.py content import FILE.yaml
                                  import content items and products (README: Content import); exit 0 when
                                  all were imported, 1 when some were skipped, 2 when the file is unusable
python run_bot.py products import FILE.yaml|FILE.csv
                                  import the product catalogue with prices (README: Products); exit codes
                                  as for content import
python run_bot.py rollups rebuild [FROM|all] [TO]
                                  recompute the daily behaviour rollups of days FROM..TO (YYYY-MM-DD, the
                                  deployment's TIMEZONE; default: the last 30 days, `all`: since the first event)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot.allocator import tune_malloc
from bot.config import ConfigError, Settings, load_settings
from bot.logs import log_handler

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_bot.py", description="Partner Assistant Telegram bot")
    parser.add_argument(
        "command", nargs="?", choices=["run", "migrate", "content", "products", "rollups"], default="run"
    )
    parser.add_argument(
        "operands", nargs="*", metavar="import FILE", help="with content or products: import FILE (see the README)"
    )
    parser.add_argument("--webhook", action="store_true", help="serve updates through the webhook")
    parser.add_argument("--as", dest="as_user", type=int, default=None, help="sandbox: chat as this Telegram user id")
    parser.add_argument("--name", default=None, help="sandbox: the chatting user's first name")
    parser.add_argument("--lang", default=None, help="sandbox: the user's Telegram language_code (zh, en)")
    parser.add_argument("--script", type=Path, default=None, help="sandbox: replay the lines of this file")
    args = parser.parse_args(argv)
    if args.command == "content" and (len(args.operands) != 2 or args.operands[0] != "import"):
        parser.error("the content command is: run_bot.py content import FILE.yaml")
    if args.command == "products" and (len(args.operands) != 2 or args.operands[0] != "import"):
        parser.error("the products command is: run_bot.py products import FILE.yaml|FILE.csv")
    if args.command == "rollups" and not (2 <= len(args.operands) + 1 <= 4 and args.operands[:1] == ["rebuild"]):
        parser.error("the rollups command is: run_bot.py rollups rebuild [FROM|all] [TO]")
    if args.command not in ("content", "products", "rollups") and args.operands:
        parser.error(f"unrecognized arguments: {' '.join(args.operands)}")
    return args


def configure_logging(settings: Settings, *, sandbox: bool) -> None:
    level = logging.getLevelName(settings.log_level)
    filename = None
    if sandbox:
        # The terminal is the chat; logs go to a file so they do not interleave with it.
        Path("data").mkdir(exist_ok=True)
        filename = "data/sandbox.log"
    logging.basicConfig(level=level, handlers=[log_handler(settings.log_format, filename)])
    logging.getLogger("aiogram.event").setLevel(max(level, logging.WARNING))


async def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = load_settings()
    if args.command == "content":
        return await import_content(settings, Path(args.operands[1]))
    if args.command == "products":
        return await import_products(settings, Path(args.operands[1]))
    if args.command == "rollups":
        return await rebuild_rollups(settings, args.operands[1:])
    tune_malloc()  # before any thread starts
    from bot import runner  # aiogram takes seconds to import: validate configuration first

    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    sandbox = settings.sandbox and args.command == "run" and not args.webhook
    configure_logging(settings, sandbox=sandbox)
    if args.command == "migrate":
        await runner.migrate(settings)
        print("database is at the newest migration")
        return 0
    if args.webhook:
        if settings.sandbox:
            raise ConfigError("BOT_TOKEN", "is required with --webhook")
        await runner.run_webhook(settings)
    elif settings.sandbox:
        user_id = args.as_user or (min(settings.admin_ids) if settings.admin_ids else 1001)
        await runner.run_sandbox(
            settings, user_id=user_id, first_name=args.name or f"User{user_id}", language=args.lang, script=args.script
        )
    else:
        await runner.run_polling(settings)
    return 0


async def import_content(settings: Settings, file: Path) -> int:
    """`content import FILE`: read the file, migrate, import it in one transaction, print one line per
    skipped entry's problem and a summary. Needs no aiogram, so it starts in a second."""
    from bot.clock import SystemClock
    from bot.i18n import Translator
    from bot.services.content_import import ImportContent, ImportFileError, load_import_file
    from storage.db import create_sessionmaker
    from storage.uow import UnitOfWork

    try:
        source = await load_import_file(file)
    except ImportFileError as exc:
        print(f"Cannot import {file}: {exc}", file=sys.stderr)
        return 2
    async with _migrated(settings) as engine, UnitOfWork(create_sessionmaker(engine)) as uow:
        texts = Translator.load("en").texts("en")
        use_case = ImportContent(uow, content_dir=settings.content_dir, clock=SystemClock(), texts=texts)
        report = await use_case(source)
    print("\n".join(report.lines()))
    return report.exit_code


async def import_products(settings: Settings, file: Path) -> int:
    """`products import FILE`: like `content import`, for the product catalogue with its prices (by SKU)."""
    from bot.clock import SystemClock
    from bot.i18n import Translator
    from bot.services.content_import import ImportFileError
    from bot.services.context import ServiceContext
    from bot.services.deals import DealService, load_products_file
    from storage.db import create_sessionmaker
    from storage.uow import UnitOfWork

    try:
        source = await load_products_file(file)
    except ImportFileError as exc:
        print(f"Cannot import {file}: {exc}", file=sys.stderr)
        return 2
    translator = Translator.load("en")
    ctx = ServiceContext(
        clock=SystemClock(), translator=translator, admin_ids=frozenset(settings.admin_ids), timezone=settings.tz
    )
    async with _migrated(settings) as engine, UnitOfWork(create_sessionmaker(engine)) as uow:
        report = await DealService(uow, ctx).import_products(source, translator.texts("en"))
    print("\n".join(report.lines()))
    return report.exit_code


async def rebuild_rollups(settings: Settings, operands: list[str]) -> int:
    """`rollups rebuild [FROM|all] [TO]`: recompute each day's rollups from the sources, a transaction per day."""
    from datetime import date, timedelta

    from bot.clock import SystemClock
    from bot.i18n import Translator
    from bot.services.behaviour import BehaviourService
    from bot.services.context import ServiceContext
    from storage.db import create_sessionmaker
    from storage.uow import UnitOfWork

    ctx = ServiceContext(
        clock=SystemClock(),
        translator=Translator.load("en"),
        admin_ids=frozenset(settings.admin_ids),
        timezone=settings.tz,
    )
    today = ctx.clock.now().astimezone(settings.tz).date()
    async with _migrated(settings) as engine:
        sessionmaker = create_sessionmaker(engine)
        try:
            if operands[:1] == ["all"]:
                async with UnitOfWork(sessionmaker) as uow:
                    first = await BehaviourService(uow, ctx).first_day() or today
            else:
                first = date.fromisoformat(operands[0]) if operands else today - timedelta(days=29)
            last = date.fromisoformat(operands[1]) if len(operands) > 1 else today
        except ValueError as exc:
            print(f"Cannot rebuild: {exc} (dates are YYYY-MM-DD)", file=sys.stderr)
            return 2
        if last < first:
            print(f"Cannot rebuild: {last} is before {first}", file=sys.stderr)
            return 2
        rows, day = 0, first
        while day <= last:
            async with UnitOfWork(sessionmaker) as uow:
                rows += await BehaviourService(uow, ctx).recompute(day)
            day += timedelta(days=1)
    print(f"rebuilt {(last - first).days + 1} days from {first} to {last}: {rows} partner-days")
    return 0


@asynccontextmanager
async def _migrated(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The database of `settings`, migrated to the newest schema, for a one-off command; disposed after."""
    from storage.db import create_engine
    from storage.migrate import upgrade_to_head

    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url)
    try:
        await upgrade_to_head(engine)
        yield engine
    finally:
        await engine.dispose()


def entry() -> int:
    try:
        return asyncio.run(main(sys.argv[1:]))
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(entry())
