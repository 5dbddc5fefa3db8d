"""The 7-day start for partners (/start7, the day-0 contact and terms buttons, the command buttons of step
messages) and /playbooks for admins (statistics, pause and resume for everyone or one partner)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)

from bot.callbacks import PlaybookAdminCallback, PlaybookCallback
from bot.domain.errors import UsageError
from bot.domain.roles import Role
from bot.i18n import SUPPORTED, Texts, Translator
from bot.services.playbooks import Checklist, PauseResult, PlaybookStats, checklist_text
from bot.services.registry import UseCases
from bot.services.rhythm import RhythmStats
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline


def me_line(checklist: Checklist, t: Texts) -> str:
    """The /me line of the 7-day start."""
    return t(
        "playbooks.progress.me_line",
        day=checklist.day,
        total=checklist.total,
        done=checklist.done,
        steps=len(checklist.items),
    )


def _labels(translator: Translator, key: str) -> frozenset[str]:
    return frozenset(translator.texts(language)(key) for language in SUPPORTED)


async def start7(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    checklist = await uc.playbooks.checklist(partner.id, t.language)
    await message.answer(checklist_text(checklist, t) if checklist else t("playbooks.start7.none"))


async def _day0_answer(message: Message, done: bool | None, key: str, t: Texts) -> None:
    if done is None:  # not waiting for it: the text is somebody else's business (e.g. the fallback)
        raise SkipHandler
    if done:
        text = f"{t(key)}\n{t('playbooks.day0.all_set')}"
        await message.answer(text, reply_markup=ReplyKeyboardRemove())
    else:
        await message.answer(t(key))


async def contact_shared(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    own = message.contact is not None and message.contact.user_id == partner.tg_user_id
    if not own:
        raise SkipHandler
    done = await uc.playbooks.record_profile(partner.id, phone=True)
    await _day0_answer(message, done, "playbooks.day0.profile_saved", t)


async def phone_skipped(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    done = await uc.playbooks.record_profile(partner.id, phone=False)
    await _day0_answer(message, done, "playbooks.day0.profile_skipped", t)


async def terms_text(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    done = await uc.playbooks.accept_terms(partner.id)
    await _day0_answer(message, done, "playbooks.day0.terms_accepted", t)


async def step_button(
    callback: CallbackQuery, callback_data: PlaybookCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    if callback_data.action == "cmd":
        await callback.answer()
        if isinstance(callback.message, Message):
            await callback.message.answer(t("playbooks.command_hint", command=f"/{callback_data.arg}"))
        return
    if callback_data.action == "terms_accept":
        done, key = await uc.playbooks.accept_terms(partner.id), "playbooks.day0.terms_accepted"
    elif callback_data.action == "profile_skip":
        done, key = await uc.playbooks.record_profile(partner.id, phone=False), "playbooks.day0.profile_skipped"
    else:
        raise UsageError("fallback.stale_button")
    await callback.answer()
    if done is not None and isinstance(callback.message, Message):
        await callback.message.answer(f"{t(key)}\n{t('playbooks.day0.all_set')}" if done else t(key))


# --- admins ----------------------------------------------------------------------------------------------------


def rhythm_lines(s: PlaybookStats, mix: RhythmStats, paused: str, t: Texts) -> list[str]:
    """A rhythm in /playbooks: partners per segment, who slipped in the last 7 days, stopped and paused touches."""
    lines = [t("rhythm.admin.item", name=s.name, playbook=s.key, paused=paused)]
    lines += [t("rhythm.admin.segment", segment=name, count=count) for name, count in mix.segments]
    if mix.unsegmented:
        lines.append(t("rhythm.admin.unsegmented", count=mix.unsegmented))
    lines.append(
        t("rhythm.admin.totals", moved_down=mix.moved_down, stopped=mix.stopped, paused_partners=mix.paused_partners)
    )
    return lines


def stats_text(stats: list[PlaybookStats], t: Texts) -> str:
    lines = [t("playbooks.admin.title")]
    for s in stats:
        paused = t("playbooks.admin.paused_mark") if s.paused else ""
        lines.append("")
        if s.rhythm is not None:
            lines += rhythm_lines(s, s.rhythm, paused, t)
            continue
        lines.append(
            t(
                "playbooks.admin.item",
                name=s.name,
                playbook=s.key,
                paused=paused,
                active=s.active,
                paused_partners=s.paused_partners,
                finished=s.finished,
            )
        )
        lines += [t("playbooks.admin.step", step=t(f"playbooks.steps.{k}"), done=n) for k, n in s.steps]
    return "\n".join(lines)


def stats_keyboard(stats: list[PlaybookStats], t: Texts) -> InlineKeyboardMarkup | None:
    rows = []
    for s in stats:
        action = "resume" if s.paused else "pause"
        data = PlaybookAdminCallback(action=action, playbook=s.key).pack()
        text = t(f"playbooks.admin.button_{action}", playbook=s.key)
        rows.append([InlineKeyboardButton(text=text, callback_data=data)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def pause_text(result: PauseResult, t: Texts) -> str:
    verb = "paused" if result.paused else "resumed"
    if result.partner is None:
        return t(f"playbooks.admin.{verb}_all", playbook=result.playbook)
    return t(f"playbooks.admin.{verb}_one", playbook=result.playbook, who=result.partner)


async def playbooks_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    args = (command.args or "").split()
    if not args:
        stats = await uc.playbooks.stats(partner, t.language)
        await message.answer(stats_text(stats, t), reply_markup=stats_keyboard(stats, t))
        return
    if args[0] not in ("pause", "resume") or len(args) not in (2, 3):
        raise UsageError("playbooks.admin.usage")
    handle = args[2] if len(args) == 3 else None
    result = await uc.playbooks.set_paused(partner, args[1], args[0] == "pause", handle)
    await message.answer(pause_text(result, t))


async def switch_press(
    callback: CallbackQuery, callback_data: PlaybookAdminCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    result = await uc.playbooks.set_paused(partner, callback_data.playbook, callback_data.action == "pause")
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(pause_text(result, t))


def build_router(translator: Translator | None = None) -> Router:
    """A fresh router with this module's handlers. For anyone but admins /playbooks falls through to `denied`."""
    translator = translator or Translator.load("zh")
    router = Router(name=__name__)
    router.message.register(start7, Command("start7"))
    router.message.register(contact_shared, Inline(F.contact))
    router.message.register(phone_skipped, Inline(F.text.in_(_labels(translator, "playbooks.buttons.skip_phone"))))
    router.message.register(terms_text, Inline(F.text.in_(_labels(translator, "playbooks.buttons.accept_terms"))))
    router.callback_query.register(step_button, PlaybookCallback.filter())
    admin = Router(name=f"{__name__}.admin")
    admin.message.filter(HasRole(Role.ADMIN))
    admin.callback_query.filter(HasRole(Role.ADMIN))
    admin.message.register(playbooks_command, Command("playbooks"))
    admin.callback_query.register(switch_press, PlaybookAdminCallback.filter())
    router.include_router(admin)
    return router
