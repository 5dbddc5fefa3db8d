"""The emulated Telegram: Bot API methods and the user-side actions of the control API.

``EmulatorCore`` is transport-agnostic: ``emulator.BotAPIEmulator`` feeds it
parsed HTTP requests (``call``) and control actions (``user_message``,
``press`` ...), and serialises what it returns.  Failures meant for the bot are
raised as ``BotAPIError`` (Bot API error shape); misuse of the control API as
``ControlError``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.sandbox.html_markup import EntityParseError, parse_html, utf16_len
from bot.sandbox.params import BotAPIError, Params, Upload, bad_request
from bot.sandbox.state import (
    MEDIA_KINDS,
    Chat,
    ChatMessage,
    FileStore,
    StoredFile,
    UpdateQueue,
    now,
    user_object,
)

__all__ = ["ControlError", "EmulatorCore", "Fault", "WebhookConfig"]

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^(\d+):(\S+)$")
_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,64})?")
_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_DEFAULT_FAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_MAX_CALLS = 100_000  # the call log keeps the most recent calls only

MethodHandler = Callable[[Params, "CallContext"], Awaitable[Any]]


class ControlError(Exception):
    """Misuse of the control API; reported as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class CallContext:
    """Who is calling: the bot identified by the request's token."""

    token: str

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` calls of ``method``."""

    method: str
    error_code: int
    remaining: int
    description: str | None = None
    retry_after: int | None = None
    chat_id: int | None = None

    def matches(self, method: str, params: Params) -> bool:
        if self.method not in {"*", method.lower()}:
            return False
        return self.chat_id is None or params.raw("chat_id") == self.chat_id

    def error(self) -> BotAPIError:
        retry_after = self.retry_after
        if self.error_code == 429 and retry_after is None:
            retry_after = 1
        description = self.description
        if description is None:
            if self.error_code == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = _DEFAULT_FAULT_DESCRIPTIONS.get(self.error_code, "Injected error")
        return BotAPIError(self.error_code, description, retry_after=retry_after)


@dataclass
class WebhookConfig:
    """What ``setWebhook`` configured."""

    url: str
    token: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _CallbackQuery:
    chat_id: int
    message_id: int
    data: str
    answered: bool = False


@dataclass
class _InlineQuery:
    user: dict[str, Any]
    query: str
    answered: bool = False


@dataclass
class Activity:
    """Bookkeeping for ``wait_idle``: in-flight bot calls and when the last one ended."""

    inflight: int = 0
    last: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last = time.monotonic()


def _decode_b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ControlError(400, f"{what}.content_b64 must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ControlError(400, f"{what}.content_b64 is not valid base64") from None


def _validate_inline_keyboard(markup: dict[str, Any]) -> None:
    rows = markup.get("inline_keyboard")
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            actions = [name for name in _BUTTON_ACTIONS if name in button]
            if len(actions) != 1:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not button["url"]:
                raise bad_request("BUTTON_URL_INVALID")


class EmulatorCore:
    """State and behaviour of the emulated Bot API server (one bot, private chats)."""

    def __init__(self, *, bot_username: str, bot_first_name: str, files_root: Path) -> None:
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.files = FileStore(files_root)
        self.updates = UpdateQueue()
        self.activity = Activity()
        self.closing = False
        self._callback_ids = itertools.count(4_611_686_018_427_387)
        self._inline_ids = itertools.count(7_000_000_000_000_000)
        self._inline_message_ids = itertools.count(1)
        self._poll_generation: dict[str, int] = {}
        self._methods: dict[str, MethodHandler] = {}
        self._canonical: dict[str, str] = {}
        self._register_methods()
        self._init_state()

    def _init_state(self) -> None:
        self.chats: dict[int, Chat] = {}
        self.calls: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.callback_queries: dict[str, _CallbackQuery] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.inline_queries: dict[str, _InlineQuery] = {}
        self.inline_answers: list[dict[str, Any]] = []
        self.inline_messages: dict[str, ChatMessage] = {}
        self.commands: dict[tuple[str, str], dict[str, Any]] = {}
        self.menu_buttons: dict[str, dict[str, Any]] = {}
        self.profile: dict[tuple[str, str], str] = {}
        self.webhook: WebhookConfig | None = None

    def reset(self) -> None:
        """Forget everything except id counters (so running pollers keep working)."""
        self.updates.clear()
        self.files.clear()
        self.updates.set_allowed([])
        self._init_state()
        self.updates.changed.fire()

    # ------------------------------------------------------------------ dispatch

    def _register_methods(self) -> None:
        table: dict[str, MethodHandler] = {
            "getMe": self.get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self.get_updates,
            "setWebhook": self.set_webhook,
            "deleteWebhook": self.delete_webhook,
            "getWebhookInfo": self.get_webhook_info,
            "sendMessage": self.send_message,
            "forwardMessage": self.forward_message,
            "copyMessage": self.copy_message,
            "getFile": self.get_file,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "editMessageMedia": self.edit_message_media,
            "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages,
            "answerCallbackQuery": self.answer_callback_query,
            "answerInlineQuery": self.answer_inline_query,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "sendChatAction": self.send_chat_action,
            "setChatMenuButton": self.set_chat_menu_button,
            "getChatMenuButton": self.get_chat_menu_button,
            "getChat": self.get_chat,
            "getChatMember": self.get_chat_member,
            "pinChatMessage": self._chat_true,
            "unpinChatMessage": self._chat_true,
            "unpinAllChatMessages": self._chat_true,
        }
        for kind in MEDIA_KINDS:
            table[f"send{kind.title()}"] = self._media_sender(kind)
        for name in ("Description", "ShortDescription", "Name"):
            key = name[0].lower() + name[1:]
            key = {"shortDescription": "short_description"}.get(key, key)
            table[f"setMy{name}"] = self._profile_setter(key)
            table[f"getMy{name}"] = self._profile_getter(key)
        for name, handler in table.items():
            self._methods[name.lower()] = handler
            self._canonical[name.lower()] = name

    def canonical_name(self, method: str) -> str:
        """Telegram method names are case-insensitive; report them in canonical case."""
        return self._canonical.get(method.lower(), method)

    async def call(self, token: str, method: str, params: Params) -> Any:
        """Run one Bot API method as the bot owning ``token`` and record the call."""
        name = self.canonical_name(method)
        record: dict[str, Any] = {
            "method": name,
            "params": params.recorded(),
            "ts": time.time(),
            "error_code": None,
        }
        self.calls.append(record)
        if len(self.calls) > _MAX_CALLS:
            del self.calls[: len(self.calls) - _MAX_CALLS]
        tracked = name != "getUpdates"
        if tracked:
            self.activity.inflight += 1
            self.activity.touch()
        try:
            fault = self._take_fault(name, params)
            if fault is not None:
                raise fault.error()
            handler = self._methods.get(method.lower())
            if handler is None:
                raise BotAPIError(404, "Not Found")
            return await handler(params, CallContext(token))
        except BotAPIError as error:
            record["error_code"] = error.error_code
            record["description"] = error.description
            raise
        finally:
            if tracked:
                self.activity.inflight -= 1
                self.activity.touch()

    def _take_fault(self, method: str, params: Params) -> Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.matches(method, params):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    # ------------------------------------------------------------------ helpers

    def bot_user(self, ctx: CallContext) -> dict[str, Any]:
        return {
            "id": ctx.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _chat(self, params: Params, name: str = "chat_id") -> Chat:
        chat = self.chats.get(params.chat_id(name))
        if chat is None:
            raise bad_request("chat not found")
        return chat

    @staticmethod
    def _format(
        raw: str, parse_mode: str | None, entities: list[Any] | None
    ) -> tuple[str, list[dict[str, Any]] | None]:
        """Apply ``parse_mode`` (HTML only) or explicit entities to ``raw`` text."""
        if entities is not None:
            return raw, [entity for entity in entities if isinstance(entity, dict)] or None
        if parse_mode and parse_mode.lower() == "html":
            try:
                plain, parsed = parse_html(raw)
            except EntityParseError as error:
                raise bad_request(f"can't parse entities: {error}") from None
            return plain, parsed or None
        return raw, None

    def _text(self, params: Params) -> tuple[str, str, list[dict[str, Any]] | None, str | None]:
        raw = params.require_str("text", "message text is empty")
        parse_mode = params.get_str("parse_mode")
        plain, entities = self._format(raw, parse_mode, params.get_list("entities"))
        if not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > 4096:
            raise bad_request("message is too long")
        return raw, plain, entities, parse_mode

    def _caption(self, params: Params) -> tuple[str | None, str | None, list[dict[str, Any]] | None, str | None]:
        raw = params.get_str("caption")
        parse_mode = params.get_str("parse_mode")
        if raw is None:
            return None, None, None, parse_mode
        plain, entities = self._format(raw, parse_mode, params.get_list("caption_entities"))
        if utf16_len(plain) > 1024:
            raise bad_request("message caption is too long")
        return raw, plain, entities, parse_mode

    @staticmethod
    def _markup(params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        markup = params.get_object("reply_markup")
        if markup is None:
            return None
        if "inline_keyboard" in markup:
            _validate_inline_keyboard(markup)
            if not markup["inline_keyboard"]:
                return None
        elif inline_only:
            raise bad_request("inline keyboard expected")
        elif not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup

    @staticmethod
    def _reply_to(chat: Chat, params: Params) -> ChatMessage | None:
        reply = params.get_object("reply_parameters")
        if reply is not None:
            message_id = reply.get("message_id")
            allow = bool(reply.get("allow_sending_without_reply"))
        else:
            message_id = params.get_int("reply_to_message_id")
            allow = params.get_bool("allow_sending_without_reply")
        if message_id is None:
            return None
        target = chat.by_id.get(int(message_id))
        if target is None or target.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _add_bot_message(self, chat: Chat, ctx: CallContext, kind: str, **fields: Any) -> ChatMessage:
        message = ChatMessage(
            chat_id=chat.id,
            message_id=chat.allocate_id(),
            from_bot=True,
            sender=self.bot_user(ctx),
            kind=kind,
            **fields,
        )
        return chat.add(message)

    async def _resolve_file(self, value: Any, uploads: dict[str, Upload], kind: str, field_name: str) -> StoredFile:
        """Turn an ``attach://`` reference, direct upload, file_id or URL into a stored file."""
        upload = uploads.get(field_name) if value in (None, "") else None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        elif upload is None:
            if not isinstance(value, str) or not value:
                raise bad_request(f"there is no {field_name} in the request")
            if value.startswith(("http://", "https://")):
                return self.files.add_url(value, kind=kind)
            stored = self.files.get(value)
            if stored is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            if (stored.kind == "photo") != (kind == "photo"):
                raise bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
            return stored
        if not upload.data:
            raise bad_request("file must be non-empty")
        mime = mimetypes.guess_type(upload.filename)[0]
        if mime is None and upload.content_type and upload.content_type != "application/octet-stream":
            mime = upload.content_type
        return await self.files.add(
            upload.data,
            kind=kind,
            file_name=upload.filename,
            mime_type=None if kind == "photo" else mime or "application/octet-stream",
        )

    def _editable(self, params: Params) -> tuple[Chat | None, ChatMessage]:
        inline_id = params.get_str("inline_message_id")
        if inline_id is not None:
            inline = self.inline_messages.get(inline_id)
            if inline is None:
                raise bad_request("message to edit not found")
            return None, inline
        chat = self._chat(params)
        if not params.has("message_id"):
            raise bad_request("message identifier is not specified")
        message = chat.by_id.get(params.require_int("message_id"))
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

    @staticmethod
    def _edit_result(chat: Chat | None, message: ChatMessage) -> Any:
        return True if chat is None else message.to_api(chat.chat_object())

    @staticmethod
    def _next_markup(message: ChatMessage, new: dict[str, Any] | None) -> dict[str, Any] | None:
        """Edits drop the inline keyboard unless a new one is sent; reply keyboards stay."""
        if new is None and message.reply_markup is not None and "inline_keyboard" not in message.reply_markup:
            return message.reply_markup
        return new

    # ------------------------------------------------------------------ methods: bot & updates

    async def _true(self, params: Params, ctx: CallContext) -> bool:
        return True

    async def _chat_true(self, params: Params, ctx: CallContext) -> bool:
        self._chat(params)
        return True

    async def get_me(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return {
            **self.bot_user(ctx),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def get_updates(self, params: Params, ctx: CallContext) -> list[dict[str, Any]]:
        """Long poll with Telegram's offset/limit/timeout semantics."""
        if self.webhook is not None:
            raise self._webhook_conflict()
        offset = params.get_int("offset")
        limit = min(max(params.get_int("limit", 100) or 100, 1), 100)
        timeout = max(params.get_int("timeout", 0) or 0, 0)
        self.updates.set_allowed(params.get_list("allowed_updates"))
        self.updates.confirm(offset)
        poller = str(ctx.bot_id)
        generation = self._poll_generation.get(poller, 0) + 1
        self._poll_generation[poller] = generation
        self.updates.changed.fire()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.closing:
                return []
            if self._poll_generation.get(poller) != generation:
                raise BotAPIError(409, _DEFAULT_FAULT_DESCRIPTIONS[409])
            if self.webhook is not None:
                raise self._webhook_conflict()
            batch = self.updates.peek(limit)
            if batch:
                return [update.payload() for update in batch]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await self.updates.changed.wait(remaining)

    @staticmethod
    def _webhook_conflict() -> BotAPIError:
        return BotAPIError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )

    async def set_webhook(self, params: Params, ctx: CallContext) -> bool:
        url = params.get_str("url") or ""
        if not url:
            return await self.delete_webhook(params, ctx)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get_str("secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.get_bool("drop_pending_updates"):
            self.updates.clear()
        allowed = params.get_list("allowed_updates")
        self.updates.set_allowed(allowed)
        self.webhook = WebhookConfig(
            url=url,
            token=ctx.token,
            secret_token=secret,
            max_connections=params.get_int("max_connections", 40) or 40,
            allowed_updates=[str(item) for item in allowed] if allowed else None,
        )
        self.updates.changed.fire()
        return True

    async def delete_webhook(self, params: Params, ctx: CallContext) -> bool:
        if params.get_bool("drop_pending_updates"):
            self.updates.clear()
        self.webhook = None
        self.updates.changed.fire()
        return True

    async def get_webhook_info(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        hook = self.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    # ------------------------------------------------------------------ methods: sending

    async def send_message(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        chat = self._chat(params)
        raw, plain, entities, parse_mode = self._text(params)
        markup = self._markup(params)
        reply_to = self._reply_to(chat, params)
        message = self._add_bot_message(
            chat,
            ctx,
            "text",
            text=raw,
            plain_text=plain,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to=reply_to,
        )
        return message.to_api(chat.chat_object())

    def _media_sender(self, kind: str) -> MethodHandler:
        async def send_media(params: Params, ctx: CallContext) -> dict[str, Any]:
            chat = self._chat(params)
            raw, plain, entities, parse_mode = self._caption(params)
            markup = self._markup(params)
            reply_to = self._reply_to(chat, params)
            stored = await self._resolve_file(params.raw(kind), params.uploads, kind, kind)
            message = self._add_bot_message(
                chat,
                ctx,
                kind,
                media=stored,
                caption=raw,
                plain_caption=plain,
                caption_entities=entities,
                parse_mode=parse_mode,
                reply_markup=markup,
                reply_to=reply_to,
            )
            return message.to_api(chat.chat_object())

        send_media.__name__ = f"send_{kind}"
        return send_media

    def _source_message(self, params: Params, action: str) -> ChatMessage:
        source_chat = self._chat(params, "from_chat_id")
        message = source_chat.by_id.get(params.require_int("message_id"))
        if message is None or message.deleted:
            raise bad_request(f"message to {action} not found")
        return message

    async def forward_message(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        source = self._source_message(params, "forward")
        chat = self._chat(params)
        origin = {"type": "user", "sender_user": source.sender, "date": source.date}
        message = self._add_bot_message(
            chat,
            ctx,
            source.kind,
            text=source.text,
            plain_text=source.plain_text,
            entities=source.entities,
            caption=source.caption,
            plain_caption=source.plain_caption,
            caption_entities=source.caption_entities,
            parse_mode=source.parse_mode,
            media=source.media,
            extra={
                **{k: v for k, v in source.extra.items() if k == "contact"},
                "forward_origin": origin,
                "forward_from": source.sender,
                "forward_date": source.date,
            },
        )
        return message.to_api(chat.chat_object())

    async def copy_message(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        source = self._source_message(params, "copy")
        chat = self._chat(params)
        caption = (source.caption, source.plain_caption, source.caption_entities, source.parse_mode)
        if params.has("caption"):
            caption = self._caption(params)
        message = self._add_bot_message(
            chat,
            ctx,
            source.kind,
            text=source.text,
            plain_text=source.plain_text,
            entities=source.entities,
            caption=caption[0],
            plain_caption=caption[1],
            caption_entities=caption[2],
            parse_mode=caption[3] if source.media else source.parse_mode,
            media=source.media,
            reply_markup=self._markup(params),
            reply_to=self._reply_to(chat, params),
            extra={k: v for k, v in source.extra.items() if k == "contact"},
        )
        return {"message_id": message.message_id}

    async def get_file(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        stored = self.files.get(params.require_str("file_id"))
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.file_object()

    async def send_chat_action(self, params: Params, ctx: CallContext) -> bool:
        self._chat(params)
        params.require_str("action", "action is empty")
        return True

    # ------------------------------------------------------------------ methods: editing

    async def edit_message_text(self, params: Params, ctx: CallContext) -> Any:
        chat, message = self._editable(params)
        raw, plain, entities, parse_mode = self._text(params)
        markup = self._next_markup(message, self._markup(params, inline_only=True))
        if message.media is not None or message.plain_text is None:
            raise bad_request("there is no text in the message to edit")
        if plain == message.plain_text and entities == message.entities and markup == message.reply_markup:
            raise bad_request(_NOT_MODIFIED)
        message.record_edit()
        message.text, message.plain_text, message.entities = raw, plain, entities
        message.parse_mode, message.reply_markup = parse_mode, markup
        return self._edit_result(chat, message)

    async def edit_message_caption(self, params: Params, ctx: CallContext) -> Any:
        chat, message = self._editable(params)
        raw, plain, entities, parse_mode = self._caption(params)
        markup = self._next_markup(message, self._markup(params, inline_only=True))
        if message.media is None:
            raise bad_request("there is no caption in the message to edit")
        if plain == message.plain_caption and entities == message.caption_entities and markup == message.reply_markup:
            raise bad_request(_NOT_MODIFIED)
        message.record_edit()
        message.caption, message.plain_caption, message.caption_entities = raw, plain, entities
        message.parse_mode, message.reply_markup = parse_mode, markup
        return self._edit_result(chat, message)

    async def edit_message_reply_markup(self, params: Params, ctx: CallContext) -> Any:
        chat, message = self._editable(params)
        markup = self._next_markup(message, self._markup(params, inline_only=True))
        if markup == message.reply_markup:
            raise bad_request(_NOT_MODIFIED)
        message.record_edit()
        message.reply_markup = markup
        return self._edit_result(chat, message)

    async def edit_message_media(self, params: Params, ctx: CallContext) -> Any:
        chat, message = self._editable(params)
        media = params.get_object("media")
        if media is None:
            raise bad_request("media is empty")
        kind = str(media.get("type", ""))
        if kind not in MEDIA_KINDS:
            raise bad_request("can't parse InputMedia: unsupported media type")
        if message.media is None:
            raise bad_request("there is no media in the message to edit")
        stored = await self._resolve_file(media.get("media"), params.uploads, kind, "media")
        caption_params = Params(
            values={
                "caption": media.get("caption"),
                "parse_mode": media.get("parse_mode"),
                "caption_entities": media.get("caption_entities"),
            }
        )
        raw, plain, entities, parse_mode = self._caption(caption_params)
        message.record_edit()
        message.kind, message.media = kind, stored
        message.caption, message.plain_caption, message.caption_entities = raw, plain, entities
        message.parse_mode = parse_mode
        message.reply_markup = self._next_markup(message, self._markup(params, inline_only=True))
        return self._edit_result(chat, message)

    async def delete_message(self, params: Params, ctx: CallContext) -> bool:
        chat = self._chat(params)
        message = chat.by_id.get(params.require_int("message_id"))
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        message.deleted = True
        return True

    async def delete_messages(self, params: Params, ctx: CallContext) -> bool:
        chat = self._chat(params)
        for message_id in params.get_list("message_ids") or []:
            message = chat.by_id.get(int(message_id))
            if message is not None:
                message.deleted = True
        return True

    # ------------------------------------------------------------------ methods: queries

    async def answer_callback_query(self, params: Params, ctx: CallContext) -> bool:
        query_id = params.require_str("callback_query_id")
        query = self.callback_queries.get(query_id)
        if query is None or query.answered:
            raise bad_request(_QUERY_INVALID)
        text = params.get_str("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        query.answered = True
        self.callback_answers.append(
            {
                "callback_query_id": query_id,
                "text": text,
                "show_alert": params.get_bool("show_alert"),
                "url": params.get_str("url"),
                "cache_time": params.get_int("cache_time"),
                "chat_id": query.chat_id,
                "message_id": query.message_id,
                "data": query.data,
            }
        )
        return True

    async def answer_inline_query(self, params: Params, ctx: CallContext) -> bool:
        query_id = params.require_str("inline_query_id")
        query = self.inline_queries.get(query_id)
        if query is None or query.answered:
            raise bad_request(_QUERY_INVALID)
        results = params.get_list("results") or []
        if len(results) > 50:
            raise bad_request("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            if not isinstance(result, dict) or "type" not in result or not result.get("id"):
                raise bad_request("can't parse InlineQueryResult")
            if str(result["id"]) in seen:
                raise bad_request("RESULT_ID_DUPLICATE")
            seen.add(str(result["id"]))
        query.answered = True
        self.inline_answers.append(
            {
                "inline_query_id": query_id,
                "user_id": query.user["id"],
                "query": query.query,
                "results": results,
                "cache_time": params.get_int("cache_time"),
                "is_personal": params.get_bool("is_personal"),
                "next_offset": params.get_str("next_offset"),
                "button": params.get_object("button"),
            }
        )
        return True

    # ------------------------------------------------------------------ methods: bot settings

    @staticmethod
    def _scope_key(params: Params) -> tuple[str, str, dict[str, Any]]:
        scope = params.get_object("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get_str("language_code") or "", scope

    async def set_my_commands(self, params: Params, ctx: CallContext) -> bool:
        commands = params.get_list("commands")
        if commands is None:
            raise bad_request("commands is empty")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_RE.match(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        scope_key, language, scope = self._scope_key(params)
        if commands:
            self.commands[(scope_key, language)] = {"scope": scope, "language_code": language, "commands": commands}
        else:
            self.commands.pop((scope_key, language), None)
        return True

    async def get_my_commands(self, params: Params, ctx: CallContext) -> list[Any]:
        scope_key, language, _ = self._scope_key(params)
        entry = self.commands.get((scope_key, language))
        return list(entry["commands"]) if entry else []

    async def delete_my_commands(self, params: Params, ctx: CallContext) -> bool:
        scope_key, language, _ = self._scope_key(params)
        self.commands.pop((scope_key, language), None)
        return True

    async def set_chat_menu_button(self, params: Params, ctx: CallContext) -> bool:
        key = "default"
        if params.has("chat_id"):
            key = str(self._chat(params).id)
        self.menu_buttons[key] = params.get_object("menu_button") or {"type": "default"}
        return True

    async def get_chat_menu_button(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        key = str(self._chat(params).id) if params.has("chat_id") else "default"
        return self.menu_buttons.get(key) or self.menu_buttons.get("default") or {"type": "commands"}

    def _profile_setter(self, key: str) -> MethodHandler:
        async def setter(params: Params, ctx: CallContext) -> bool:
            language = params.get_str("language_code") or ""
            value = params.get_str(key)
            if value:
                self.profile[(key, language)] = value
            else:
                self.profile.pop((key, language), None)
            return True

        return setter

    def _profile_getter(self, key: str) -> MethodHandler:
        async def getter(params: Params, ctx: CallContext) -> dict[str, Any]:
            language = params.get_str("language_code") or ""
            value = self.profile.get((key, language), self.profile.get((key, ""), ""))
            if key == "name" and not value:
                value = self.bot_first_name
            return {key: value}

        return getter

    async def get_chat(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        chat = self._chat(params)
        return {
            **chat.chat_object(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def get_chat_member(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        chat = self._chat(params)
        user_id = params.require_int("user_id")
        if user_id == chat.id:
            return {"status": "member", "user": chat.user}
        if user_id == ctx.bot_id:
            return {"status": "member", "user": self.bot_user(ctx)}
        raise bad_request("user not found")

    # ------------------------------------------------------------------ control side: users act

    def _user_chat(self, body: dict[str, Any]) -> tuple[dict[str, Any], Chat]:
        raw_user = body.get("user")
        if not isinstance(raw_user, dict):
            raise ControlError(400, "'user' must be an object with 'id' and 'first_name'")
        try:
            user = user_object(raw_user)
        except (ValueError, TypeError) as error:
            raise ControlError(400, str(error)) from None
        chat = self.chats.get(user["id"])
        if chat is None:
            chat = self.chats[user["id"]] = Chat(user=user)
        else:
            chat.user = user
        return user, chat

    async def user_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """A private message from a user: text, contact, document or photo, maybe forwarded."""
        user, chat = self._user_chat(body)
        message = ChatMessage(chat_id=chat.id, message_id=0, from_bot=False, sender=user, kind="text")
        await self._fill_user_content(message, body)
        if body.get("forward_from"):
            try:
                origin_user = user_object(body["forward_from"])
            except (ValueError, TypeError) as error:
                raise ControlError(400, f"forward_from: {error}") from None
            message.extra.update(
                forward_origin={"type": "user", "sender_user": origin_user, "date": now()},
                forward_from=origin_user,
                forward_date=now(),
            )
        reply_id = body.get("reply_to_message_id")
        if reply_id is not None:
            message.reply_to = chat.by_id.get(int(reply_id))
        message.message_id = chat.allocate_id()
        chat.add(message)
        update_id = self.updates.push("message", message.to_api(chat.chat_object()))
        return {"update_id": update_id, "message_id": message.message_id}

    async def _fill_user_content(self, message: ChatMessage, body: dict[str, Any]) -> None:
        """Set kind, text/caption, media or contact of a user message from a control request."""
        text = body.get("text")
        caption = body.get("caption", text)
        document, photo, contact = body.get("document"), body.get("photo"), body.get("contact")
        if document:
            if not isinstance(document, dict):
                raise ControlError(400, "'document' must be an object")
            message.kind = "document"
            message.media = await self.files.add(
                _decode_b64(document.get("content_b64"), "document"),
                kind="document",
                file_name=str(document.get("file_name") or "document.bin"),
                mime_type=document.get("mime_type"),
            )
        elif photo:
            if not isinstance(photo, dict):
                raise ControlError(400, "'photo' must be an object")
            message.kind = "photo"
            message.media = await self.files.add(_decode_b64(photo.get("content_b64"), "photo"), kind="photo")
        elif contact:
            if not isinstance(contact, dict) or not contact.get("phone_number") or not contact.get("first_name"):
                raise ControlError(400, "'contact' needs 'phone_number' and 'first_name'")
            message.kind = "contact"
            message.extra["contact"] = {key: value for key, value in contact.items() if value is not None}
        elif isinstance(text, str) and text:
            message.text = message.plain_text = text
            command = _COMMAND_RE.match(text)
            if command is not None:
                message.entities = [{"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}]
        else:
            raise ControlError(400, "a message needs 'text', 'contact', 'document' or 'photo'")
        if message.media is not None and isinstance(caption, str) and caption:
            message.caption = message.plain_caption = caption

    async def press(self, body: dict[str, Any]) -> dict[str, Any]:
        """A user presses a callback button on a bot message in their chat."""
        user, chat = self._user_chat(body)
        data = body.get("data")
        if not isinstance(data, str):
            raise ControlError(400, "'data' must be a string")
        try:
            message_id = int(body["message_id"])
        except (KeyError, TypeError, ValueError):
            raise ControlError(400, "'message_id' must be an integer") from None
        message = chat.by_id.get(message_id)
        if message is None:
            raise ControlError(404, f"message {message_id} not found in chat {chat.id}")
        if not message.from_bot:
            raise ControlError(400, f"message {message_id} was not sent by the bot")
        if message.deleted:
            raise ControlError(400, f"message {message_id} was deleted")
        query_id = str(next(self._callback_ids))
        self.callback_queries[query_id] = _CallbackQuery(chat.id, message_id, data)
        update_id = self.updates.push(
            "callback_query",
            {
                "id": query_id,
                "from": user,
                "message": message.to_api(chat.chat_object()),
                "chat_instance": str(-7_000_000_000_000_000_000 - chat.id),
                "data": data,
            },
        )
        return {"update_id": update_id, "callback_query_id": query_id}

    async def inline_query(self, body: dict[str, Any]) -> dict[str, Any]:
        user, _ = self._user_chat(body)
        query = str(body.get("query") or "")
        query_id = str(next(self._inline_ids))
        self.inline_queries[query_id] = _InlineQuery(user, query)
        update_id = self.updates.push(
            "inline_query",
            {
                "id": query_id,
                "from": user,
                "query": query,
                "offset": str(body.get("offset") or ""),
                "chat_type": str(body.get("chat_type") or "sender"),
            },
        )
        return {"update_id": update_id, "inline_query_id": query_id}

    async def chosen_inline_result(self, body: dict[str, Any]) -> dict[str, Any]:
        user, _ = self._user_chat(body)
        result_id = body.get("result_id")
        if not isinstance(result_id, str) or not result_id:
            raise ControlError(400, "'result_id' must be a non-empty string")
        payload: dict[str, Any] = {"result_id": result_id, "from": user, "query": str(body.get("query") or "")}
        inline_message_id = body.get("inline_message_id")
        result = self._answered_result(user["id"], result_id)
        if inline_message_id is None and result is not None and result.get("reply_markup"):
            inline_message_id = f"AgAAA{next(self._inline_message_ids):08d}"
        if inline_message_id is not None:
            payload["inline_message_id"] = str(inline_message_id)
            self.inline_messages[str(inline_message_id)] = self._inline_message(user, result)
        update_id = self.updates.push("chosen_inline_result", payload)
        return {"update_id": update_id, "inline_message_id": payload.get("inline_message_id")}

    def _answered_result(self, user_id: int, result_id: str) -> dict[str, Any] | None:
        for answer in reversed(self.inline_answers):
            if answer["user_id"] != user_id:
                continue
            for result in answer["results"]:
                if str(result.get("id")) == result_id:
                    return dict(result)
        return None

    def _inline_message(self, user: dict[str, Any], result: dict[str, Any] | None) -> ChatMessage:
        content = (result or {}).get("input_message_content") or {}
        text = content.get("message_text") or (result or {}).get("caption") or ""
        return ChatMessage(
            chat_id=0,
            message_id=0,
            from_bot=True,
            sender=user,
            kind="text",
            text=text,
            plain_text=text,
            parse_mode=content.get("parse_mode"),
            reply_markup=(result or {}).get("reply_markup"),
        )

    # ------------------------------------------------------------------ control side: inspection

    def chat_messages(self, chat_id: int) -> list[dict[str, Any]]:
        chat = self.chats.get(chat_id)
        return [message.to_control() for message in chat.messages] if chat else []

    def list_calls(self, method: str | None) -> list[dict[str, Any]]:
        if not method:
            return list(self.calls)
        wanted = method.lower()
        return [call for call in self.calls if call["method"].lower() == wanted]

    def list_commands(self) -> list[dict[str, Any]]:
        return list(self.commands.values())

    def list_inline_messages(self) -> list[dict[str, Any]]:
        return [{"inline_message_id": key, **message.to_control()} for key, message in self.inline_messages.items()]

    def is_idle(self, quiet: float) -> bool:
        """No undelivered update, no call in flight and ``quiet`` seconds without bot activity."""
        if len(self.updates) or self.activity.inflight:
            return False
        last = max(self.activity.last, self.updates.last_progress)
        return time.monotonic() - last >= quiet

    async def wait_idle(self, quiet_ms: float, max_wait: float) -> bool:
        """Wait up to ``max_wait`` seconds for ``is_idle``; report whether it was reached."""
        quiet = max(quiet_ms, 0) / 1000
        deadline = time.monotonic() + max(max_wait, 0)
        while not self.is_idle(quiet):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True
