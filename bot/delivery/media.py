"""Pictures queued as raw bytes: written to MEDIA_DIR when the message is enqueued, so it survives a restart."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
)


def _extension(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((ext for magic, ext in _SIGNATURES if data.startswith(magic)), ".jpg")


def _write_once(media_dir: Path, data: bytes) -> Path:
    media_dir.mkdir(parents=True, exist_ok=True)
    target = media_dir / f"{hashlib.sha256(data).hexdigest()}{_extension(data)}"
    if target.is_file():
        return target
    fd, temporary = tempfile.mkstemp(dir=media_dir, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temporary, target)  # atomic: a sender never sees half a file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


async def persist_photo(media_dir: Path, data: bytes) -> Path:
    """Store `data` under `media_dir` by content hash and return its absolute path.

    The same picture queued for many partners (a broadcast poster) is stored once, and the sender uploads it
    once and reuses Telegram's file_id afterwards.
    """
    if not data:
        raise ValueError("an empty picture cannot be sent")
    path = await asyncio.to_thread(_write_once, media_dir, data)
    return path.resolve()
