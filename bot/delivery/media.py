"""Pictures queued as raw bytes: written to MEDIA_DIR when the message is enqueued, so it survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Collection
from datetime import datetime
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
        with contextlib.suppress(OSError):  # never fail a send over this; its waiting row protects it once committed
            os.utime(target)  # queued again: in use from now on, so retention (remove_unused) leaves it alone
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


def remove_unused(media_dir: Path, in_use: Collection[str], unused_since: datetime) -> int:
    """Delete the pictures under `media_dir` that no waiting outbox row sends (`in_use`) and that were last queued
    before `unused_since` (their mtime: `_write_once` touches a file queued again), left-over temporary files
    included. How many files were deleted. Blocking: run it in a thread."""
    if not media_dir.is_dir():
        return 0
    keep = {Path(path).resolve() for path in in_use}
    cutoff = unused_since.timestamp()
    removed = 0
    for path in media_dir.iterdir():
        if not path.is_file() or path.resolve() in keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


async def persist_photo(media_dir: Path, data: bytes) -> Path:
    """Store `data` under `media_dir` by content hash and return its absolute path.

    The same picture queued for many partners (a broadcast poster) is stored once, and the sender uploads it
    once and reuses Telegram's file_id afterwards.
    """
    if not data:
        raise ValueError("an empty picture cannot be sent")
    path = await asyncio.to_thread(_write_once, media_dir, data)
    return path.resolve()
