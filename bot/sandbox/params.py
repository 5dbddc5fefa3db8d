"""Reading Bot API requests: query string, JSON, urlencoded and multipart bodies.

Telegram accepts every method's parameters in any of those encodings; with
forms, every value arrives as a string and complex values (``reply_markup``,
``entities``, ``commands`` ...) as JSON-serialised strings.  ``read_call``
normalises all of it into typed Python values, and ``Params`` offers typed,
validating accessors that raise ``BotAPIError`` in Telegram's wording.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

__all__ = ["BotAPIError", "Params", "Upload", "bad_request", "normalise", "read_call"]

_INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "timeout",
        "cache_time",
        "max_connections",
        "user_id",
        "duration",
        "width",
        "height",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "disable_notification",
        "protect_content",
        "allow_paid_broadcast",
        "drop_pending_updates",
        "is_personal",
        "has_spoiler",
        "show_caption_above_media",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "disable_content_type_detection",
        "supports_streaming",
        "remove_caption",
    }
)
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "commands",
        "scope",
        "results",
        "link_preview_options",
        "reply_parameters",
        "allowed_updates",
        "media",
        "menu_button",
        "button",
        "message_ids",
    }
)


class BotAPIError(Exception):
    """A failure to report in the Bot API error shape."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram would answer with."""
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(message: str) -> BotAPIError:
    """``400 Bad Request: <message>``."""
    return BotAPIError(400, f"Bad Request: {message}")


@dataclass(frozen=True)
class Upload:
    """A file sent inside a multipart request."""

    filename: str
    content_type: str | None
    data: bytes


def _coerce(name: str, value: Any) -> Any:
    """Give a form-encoded value the type its parameter has in the Bot API."""
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise bad_request("can't parse reply keyboard markup JSON object") from None
            raise bad_request(f"can't parse {name} JSON object") from None
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in _BOOL_FIELDS:
        return value.strip().lower() in {"true", "1", "yes"}
    return value


@dataclass
class Params:
    """Normalised parameters of one call, with Telegram-style validation helpers."""

    values: dict[str, Any]
    uploads: dict[str, Upload] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, (dict, list)):
            raise bad_request(f'field "{name}" must be of type String')
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)

    def require_str(self, name: str, empty_message: str | None = None) -> str:
        value = self.get_str(name)
        if value is None:
            raise bad_request(empty_message or f"{name} is empty")
        return value

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise bad_request(f'field "{name}" must be of type Integer') from None

    def require_int(self, name: str) -> int:
        value = self.get_int(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def get_bool(self, name: str, *, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            return value.strip().lower() in {"true", "1", "yes"}
        return bool(value)

    def get_object(self, name: str) -> dict[str, Any] | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise bad_request(f'field "{name}" must be an Object')
        return value

    def get_list(self, name: str) -> list[Any] | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, list):
            raise bad_request(f'field "{name}" must be an Array')
        return value

    def chat_id(self, name: str = "chat_id") -> int:
        """The target chat; unknown usernames are reported as ``chat not found``."""
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad_request("chat not found")

    def recorded(self) -> dict[str, Any]:
        """Parameters as shown by the control API (uploads summarised, not inlined)."""
        shown = dict(self.values)
        for name, upload in self.uploads.items():
            shown.setdefault(name, f"<upload {upload.filename}, {len(upload.data)} bytes>")
        return shown


def normalise(source: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce string-encoded values to their Bot API types (idempotent on typed values)."""
    return {key: _coerce(key, value) for key, value in source.items()}


def _merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    target.update(normalise(source))


async def read_call(request: web.Request) -> Params:
    """Collect and normalise the parameters and uploaded files of a Bot API request."""
    values: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    _merge(values, request.query)
    if request.method == "POST" and request.can_read_body:
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON encoded request body") from None
            if not isinstance(body, dict):
                raise bad_request("JSON request body must be an object")
            _merge(values, body)
        elif content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                data = await part.read(decode=True)
                if part.filename is not None:
                    uploads[part.name] = Upload(
                        filename=part.filename,
                        content_type=part.headers.get("Content-Type"),
                        data=bytes(data),
                    )
                else:
                    text = bytes(data).decode(part.get_charset(default="utf-8"))
                    values[part.name] = _coerce(part.name, text)
        else:
            form = await request.post()
            _merge(values, {key: value for key, value in form.items() if isinstance(value, str)})
    return Params(values=values, uploads=uploads)
