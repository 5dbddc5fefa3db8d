"""An in-process fake Bot API session: records every call and answers like Telegram would.

Used by the tier-2 tests (asserting the real calls) and by the benchmarks (a cheap stand-in).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import BufferedInputFile, InputFile

BOT_ID = 123456
BOT_USERNAME = "partner_assistant_bot"


@dataclass
class Call:
    method: str
    params: dict[str, Any]

    @property
    def text(self) -> str:
        """The message text or photo caption; empty when the call has neither."""
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def chat_id(self) -> int | None:
        return self.params.get("chat_id")

    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]


def _plain(value: Any) -> Any:
    """Method parameters as JSON-like data; uploads become '<upload:filename>' with their bytes kept."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, InputFile):
        return f"<upload:{value.filename}>"
    return value


class RecordingSession(BaseSession):
    """Records the method, chat, text and keyboard of every call; `fail_next` injects API errors."""

    def __init__(self, *, record: bool = True) -> None:
        super().__init__()
        self.record = record
        self.calls: list[Call] = []
        self._message_ids = itertools.count(1000)
        self._faults: dict[str, list[dict[str, Any]]] = {}
        self.uploads: list[bytes] = []
        self.files: dict[str, bytes] = {}
        """Files users sent, by file_id: served by getFile and downloads (see `add_file`)."""
        self.downloads: list[str] = []
        """The file paths downloaded, in order."""

    def fail_next(self, method: str, error_code: int, description: str, retry_after: int | None = None) -> None:
        error: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            error["parameters"] = {"retry_after": retry_after}
        self._faults.setdefault(method, []).append(error)

    def add_file(self, file_id: str, data: bytes) -> None:
        """Make a file a user sent downloadable: getFile answers `files/<file_id>`, the download gives `data`."""
        self.files[file_id] = data

    def of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def texts(self, chat_id: int) -> list[str]:
        return [c.text for c in self.calls if c.chat_id == chat_id and c.text]

    def clear(self) -> None:
        self.calls.clear()

    async def close(self) -> None:
        return None

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - BaseSession's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """Downloads (`bot.download`): the bytes given to `add_file`, empty for unknown files."""
        path = url.split("/file/bot", 1)[-1].split("/", 1)[-1]
        self.downloads.append(path)
        data = self.files.get(path.removeprefix("files/"), b"")
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]
        if not data:
            yield b""

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - BaseSession's signature
    ) -> TelegramType:
        name = type(method).__name__
        api_name = name[0].lower() + name[1:]
        params = _plain(method.model_dump(exclude_none=True))
        photo = getattr(method, "photo", None)
        if isinstance(photo, BufferedInputFile):
            self.uploads.append(photo.data)
        if self.record:
            self.calls.append(Call(api_name, params))
        faults = self._faults.get(api_name)
        if faults:
            payload = faults.pop(0)
            status = payload["error_code"]
        else:
            payload = {"ok": True, "result": self._result(api_name, params)}
            status = 200
        response = self.check_response(bot=bot, method=method, status_code=status, content=json.dumps(payload))
        return response.result  # type: ignore[return-value]

    def _message(self, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(datetime.now(UTC).timestamp()),
            "chat": {"id": params.get("chat_id", 0), "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Partner Assistant", "username": BOT_USERNAME},
            **extra,
        }

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Partner Assistant", "username": BOT_USERNAME}
        if method == "sendMessage":
            return self._message(params, text=params.get("text", ""))
        if method in ("sendPhoto", "sendDocument"):
            photo = [
                {
                    "file_id": f"photo-{len(self.calls)}",
                    "file_unique_id": f"u{len(self.calls)}",
                    "width": 720,
                    "height": 1080,
                }
            ]
            return self._message(params, photo=photo, caption=params.get("caption"))
        if method == "sendVideo":
            video = {
                "file_id": f"video-{len(self.calls)}",
                "file_unique_id": f"u{len(self.calls)}",
                "width": 720,
                "height": 1280,
                "duration": 10,
            }
            return self._message(params, video=video, caption=params.get("caption"))
        if method == "getFile":
            file_id = str(params.get("file_id", ""))
            data = self.files.get(file_id, b"")
            return {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "file_size": len(data),
                "file_path": f"files/{file_id}",
            }
        if method in ("editMessageText", "editMessageReplyMarkup", "editMessageCaption"):
            return self._message(params, text=params.get("text", ""))
        return True
