"""/export <kind> [period] [csv|xlsx] for admins: a progress message that is edited while the rows are written,
then the file as a document. Anyone else falls through to `denied` (refused and audited)."""

from __future__ import annotations

import contextlib

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import FSInputFile, Message

from bot.domain.exports import Period
from bot.domain.roles import Role
from bot.i18n import Raw, Texts
from bot.services.exports import ExportFile, ExportProgress
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole


class ProgressMessage:
    """The "Exporting orders… 40%" message: sent on the first report, edited on later ones, removed at the end.
    Progress is a courtesy: a failed edit (the admin deleted the message, a flood limit) does not stop the export."""

    def __init__(self, bot: Bot, chat_id: int, t: Texts) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._t = t
        self._message_id: int | None = None
        self._text = ""

    async def __call__(self, progress: ExportProgress, /) -> None:
        text = self._t(
            "exports.progress",
            kind=Raw(self._t(f"exports.kind.{progress.kind}")),
            percent=progress.percent,
            written=f"{progress.written:,}",
            total=f"{progress.total:,}",
        )
        if self._message_id is None:
            self._message_id = (await self._bot.send_message(self._chat_id, text)).message_id
        elif text != self._text:
            with contextlib.suppress(TelegramAPIError):
                await self._bot.edit_message_text(text, chat_id=self._chat_id, message_id=self._message_id)
        self._text = text

    async def remove(self) -> None:
        if self._message_id is not None:
            with contextlib.suppress(TelegramAPIError):
                await self._bot.delete_message(self._chat_id, self._message_id)
            self._message_id = None


def period_text(period: Period, t: Texts) -> str:
    if period.first is None or period.last is None:
        return t("exports.period_all")
    return t("exports.period_days", first=period.first.isoformat(), last=period.last.isoformat())


def outcome_text(done: ExportFile, t: Texts) -> str:
    """The caption of the file, or why there is no file."""
    params: dict[str, object] = {
        "kind": Raw(t(f"exports.kind.{done.request.kind}")),
        "period": Raw(period_text(done.request.period, t)),
        "command": done.request.kind,
    }
    if done.rows == 0:
        return t("exports.empty", **params)
    if done.too_large:
        return t("exports.too_large", size=f"{done.size / (1024 * 1024):.1f}", **params)
    caption = t("exports.caption", count=f"{done.rows:,}", zone=done.zone.key, **params)
    return f"{caption}\n{t('exports.zipped')}" if done.zipped else caption


async def export_command(
    message: Message, command: CommandObject, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    progress = ProgressMessage(bot, message.chat.id, t)
    try:
        with await uc.exports.export(partner, command.args, progress) as done:
            if done.path is None:
                await message.answer(outcome_text(done, t))
            else:
                document = FSInputFile(done.path, filename=done.filename)
                await message.answer_document(document, caption=outcome_text(done, t))
    finally:
        await progress.remove()


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.message.register(export_command, Command("export"))
    return router
