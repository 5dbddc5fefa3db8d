"""In-memory world of the Bot API emulator: users, chats, messages, files and the update queue.

Everything here is plain data plus small synchronous helpers; the only
asynchronous parts are file writes (off-loaded to a thread) and the
``UpdateQueue`` long-poll wait.  HTTP concerns live in ``emulator``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import mimetypes
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Chat",
    "ChatMessage",
    "FileStore",
    "Signal",
    "StoredFile",
    "UpdateQueue",
    "now",
    "user_object",
]

#: Update types Telegram delivers when ``allowed_updates`` is empty or never set.
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
MEDIA_KINDS = ("photo", "document", "video", "audio", "voice", "animation")


def now() -> int:
    """Unix time in seconds, the unit of every Bot API date."""
    return int(time.time())


def user_object(user: dict[str, Any], *, is_bot: bool = False) -> dict[str, Any]:
    """A Bot API ``User`` built from a control-API user description."""
    if "id" not in user or "first_name" not in user:
        raise ValueError("a user needs at least 'id' and 'first_name'")
    result: dict[str, Any] = {"id": int(user["id"]), "is_bot": is_bot, "first_name": str(user["first_name"])}
    for key in ("last_name", "username", "language_code"):
        if user.get(key):
            result[key] = str(user[key])
    return result


class Signal:
    """A broadcast wake-up: every ``wait`` pending at ``fire`` time returns."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Return at the next ``fire`` or after ``seconds``, whichever comes first."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


def _image_size(data: bytes) -> tuple[int, int]:
    """Pixel size of an image via Pillow when available; ``(0, 0)`` otherwise."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a project dependency
        return 0, 0
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            return int(width), int(height)
    except Exception:  # any undecodable payload simply has no size
        return 0, 0


def _sniff_suffix(data: bytes) -> str:
    signatures = {
        b"\x89PNG": ".png",
        b"\xff\xd8\xff": ".jpg",
        b"GIF8": ".gif",
        b"%PDF": ".pdf",
        b"RIFF": ".webp",
        b"PK\x03\x04": ".zip",
    }
    for signature, suffix in signatures.items():
        if data.startswith(signature):
            return suffix
    return ".bin"


@dataclass
class StoredFile:
    """One file known to the emulator, uploaded by the bot or sent by a user."""

    file_id: str
    file_unique_id: str
    kind: str
    file_path: str
    size: int
    local_path: Path | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    url: str | None = None

    def file_object(self) -> dict[str, Any]:
        """The Bot API ``File`` returned by ``getFile``."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }

    def media_object(self) -> Any:
        """The value of the message field named after ``kind``."""
        base: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        if self.kind == "photo":
            return [{**base, "width": self.width, "height": self.height}]
        if self.kind in {"video", "animation"}:
            base.update(width=self.width, height=self.height, duration=0)
        elif self.kind in {"audio", "voice"}:
            base["duration"] = 0
        if self.kind != "voice" and self.file_name:
            base["file_name"] = self.file_name
        if self.mime_type:
            base["mime_type"] = self.mime_type
        return base


class FileStore:
    """Stores file bytes on disk under ``root`` and indexes them by id and path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = itertools.count(1)

    def clear(self) -> None:
        self._by_id.clear()
        self._by_path.clear()

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        return self._by_path.get(file_path)

    def _register(self, stored: StoredFile) -> StoredFile:
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def _ids(self, kind: str) -> tuple[int, str, str]:
        number = next(self._counter)
        prefix = "AgAC" if kind == "photo" else "BQAC"
        file_id = f"{prefix}{number:06d}{secrets.token_urlsafe(24)}"
        unique_id = f"AQAD{number:06d}{secrets.token_hex(4)}"
        return number, file_id, unique_id

    async def add(
        self,
        data: bytes,
        *,
        kind: str,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        """Store ``data`` and return its record with fresh ``file_id``/``file_unique_id``."""
        number, file_id, unique_id = self._ids(kind)
        suffix = Path(file_name).suffix.lower() if file_name and Path(file_name).suffix else _sniff_suffix(data)
        file_path = f"{kind}s/file_{number}{suffix}"
        local_path = self.root / file_path
        await asyncio.to_thread(_write_file, local_path, data)
        width, height = _image_size(data) if kind in {"photo", "video", "animation"} else (0, 0)
        if mime_type is None and kind != "photo":
            mime_type = mimetypes.guess_type(file_name or f"x{suffix}")[0]
        return self._register(
            StoredFile(
                file_id=file_id,
                file_unique_id=unique_id,
                kind=kind,
                file_path=file_path,
                size=len(data),
                local_path=local_path,
                file_name=file_name,
                mime_type=mime_type,
                width=width,
                height=height,
            )
        )

    def add_url(self, url: str, *, kind: str) -> StoredFile:
        """Record a file the bot passed by HTTP URL; the emulator never fetches it."""
        number, file_id, unique_id = self._ids(kind)
        return self._register(
            StoredFile(
                file_id=file_id,
                file_unique_id=unique_id,
                kind=kind,
                file_path=f"{kind}s/file_{number}",
                size=0,
                local_path=None,
                file_name=url.rsplit("/", 1)[-1] or None,
                url=url,
            )
        )

    async def read(self, stored: StoredFile) -> bytes:
        if stored.local_path is None:
            return b""
        return await asyncio.to_thread(stored.local_path.read_bytes)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@dataclass
class ChatMessage:
    """A message in a private chat, in the form both the Bot API and the control API need."""

    chat_id: int
    message_id: int
    from_bot: bool
    sender: dict[str, Any]
    kind: str
    date: int = field(default_factory=now)
    text: str | None = None
    plain_text: str | None = None
    entities: list[dict[str, Any]] | None = None
    caption: str | None = None
    plain_caption: str | None = None
    caption_entities: list[dict[str, Any]] | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    media: StoredFile | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reply_to: ChatMessage | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False

    def to_api(self, chat: dict[str, Any], *, with_reply: bool = True) -> dict[str, Any]:
        """The Bot API ``Message`` object."""
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender,
            "date": self.date,
            "chat": chat,
        }
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            message["reply_to_message"] = self.reply_to.to_api(chat, with_reply=False)
        if self.plain_text is not None:
            message["text"] = self.plain_text
            if self.entities:
                message["entities"] = self.entities
        if self.media is not None:
            message[self.media.kind] = self.media.media_object()
        if self.plain_caption is not None:
            message["caption"] = self.plain_caption
            if self.caption_entities:
                message["caption_entities"] = self.caption_entities
        message.update(self.extra)
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            message["reply_markup"] = self.reply_markup
        return message

    def snapshot(self) -> dict[str, Any]:
        """The control-API view of the current version, without edit history."""
        view: dict[str, Any] = {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "from_bot": self.from_bot,
            "kind": self.kind,
            "date": self.date,
            "text": self.text,
            "plain_text": self.plain_text,
            "entities": self.entities,
            "caption": self.caption,
            "plain_caption": self.plain_caption,
            "parse_mode": self.parse_mode,
            "reply_markup": self.reply_markup,
            "photo_file_id": self.media.file_id if self.media and self.media.kind == "photo" else None,
            "file_id": self.media.file_id if self.media else None,
            "file_name": self.media.file_name if self.media else None,
            "mime_type": self.media.mime_type if self.media else None,
            "edit_date": self.edit_date,
            "reply_to_message_id": self.reply_to.message_id if self.reply_to else None,
        }
        view.update({key: value for key, value in self.extra.items() if key in {"contact", "forward_origin"}})
        return view

    def to_control(self) -> dict[str, Any]:
        """The control-API view: current state plus ``edits`` and ``deleted``."""
        return {**self.snapshot(), "edits": list(self.edits), "deleted": self.deleted}

    def record_edit(self) -> None:
        """Save the current version into ``edits`` before it is changed."""
        self.edits.append(self.snapshot())
        self.edit_date = now()


@dataclass
class Chat:
    """A private chat between the bot and one user (chat id = user id)."""

    user: dict[str, Any]
    messages: list[ChatMessage] = field(default_factory=list)
    by_id: dict[int, ChatMessage] = field(default_factory=dict)
    next_message_id: int = 1

    @property
    def id(self) -> int:
        return int(self.user["id"])

    def chat_object(self) -> dict[str, Any]:
        """The Bot API ``Chat`` of this private chat."""
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.user["first_name"]}
        for key in ("last_name", "username"):
            if self.user.get(key):
                chat[key] = self.user[key]
        return chat

    def add(self, message: ChatMessage) -> ChatMessage:
        self.messages.append(message)
        self.by_id[message.message_id] = message
        return message

    def allocate_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class QueuedUpdate:
    update_id: int
    kind: str
    body: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"update_id": self.update_id, self.kind: self.body}


class UpdateQueue:
    """Pending updates with Telegram's ``getUpdates`` semantics.

    Updates stay queued until confirmed by an ``offset`` greater than their id
    (polling) or until delivered (webhook).  ``changed`` fires on every push and
    confirmation so long polls and waiters can wake up.
    """

    def __init__(self) -> None:
        self._items: list[QueuedUpdate] = []
        self._next_id = 1
        self.allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.changed = Signal()
        self.last_progress = time.monotonic()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, kind: str, body: dict[str, Any]) -> int:
        update = QueuedUpdate(self._next_id, kind, body)
        self._next_id += 1
        self._items.append(update)
        self.changed.fire()
        return update.update_id

    def clear(self) -> None:
        """Drop every pending update; ids keep increasing so live pollers stay in sync."""
        self._items.clear()
        self._progress()

    def _progress(self) -> None:
        self.last_progress = time.monotonic()
        self.changed.fire()

    def set_allowed(self, allowed: Iterable[str] | None) -> None:
        if allowed is None:
            return
        types = frozenset(allowed)
        self.allowed = types or DEFAULT_UPDATE_TYPES

    def confirm(self, offset: int | None) -> None:
        """Forget updates below ``offset``; a negative offset keeps only the last ``-offset``."""
        if offset is None or offset == 0:
            return
        before = len(self._items)
        if offset < 0:
            self._items = self._items[offset:]
        else:
            self._items = [item for item in self._items if item.update_id >= offset]
        if len(self._items) != before:
            self._progress()

    def drop_filtered(self) -> None:
        """Discard queued updates whose type the bot did not ask for."""
        kept = [item for item in self._items if item.kind in self.allowed]
        if len(kept) != len(self._items):
            self._items = kept
            self._progress()

    def peek(self, limit: int) -> list[QueuedUpdate]:
        self.drop_filtered()
        return self._items[:limit]

    def pop_delivered(self, update_id: int) -> None:
        """Remove one update after a webhook delivery (successful or abandoned)."""
        self._items = [item for item in self._items if item.update_id != update_id]
        self._progress()
