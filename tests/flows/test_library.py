"""Tier 2: the material center for admins (/content): adding items from chat, listing, preview, edits,
archive/restore, refusals of bad input and of non-admins."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.callbacks import LibraryCallback
from bot.services.library import partner_body
from storage.models import AuditEntry, ContentItem, Event, Partner
from tests.support.harness import ADMIN_ID, START, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ADMIN_ZH = tg_user(ADMIN_ID, "Root", lang="zh")
ALICE = tg_user(101, "Alice", lang="en")
SAMPLE_LINK = "http://127.0.0.1:8080/r/sample"
MB = 1024 * 1024


@pytest.fixture
def content_dir(harness: BotHarness, tmp_path: Path) -> Path:
    """Originals go to a temporary CONTENT_DIR (the dispatcher shares the harness's context)."""
    harness.ctx.content_dir = tmp_path / "content"
    return harness.ctx.content_dir


def jpeg(size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format=fmt)
    return out.getvalue()


def files_in(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


def read(path: str | None) -> bytes:
    return Path(path or "").read_bytes()


def lib(action: str, *, item: int = 0, page: int = 0, field: str = "") -> str:
    return LibraryCallback(action=action, item=item, page=page, field=field).pack()


async def items(h: BotHarness) -> list[ContentItem]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(ContentItem).order_by(ContentItem.id))).scalars())


async def audit_rows(h: BotHarness) -> list[AuditEntry]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


async def admin_partner_id(h: BotHarness) -> int:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner.id).where(Partner.tg_user_id == ADMIN_ID))).scalar_one()


async def seed(h: BotHarness, count: int, *, archived: tuple[int, ...] = (), media: str | None = None) -> list[int]:
    """`count` items created a minute apart (item n is the n-th oldest); their ids in creation order."""
    async with h.sessionmaker() as s:
        rows = []
        for n in range(count):
            at = START + timedelta(minutes=n)
            rows.append(
                ContentItem(
                    title=f"Item {n}",
                    text=f"Text {n}",
                    url=f"https://shop.example.com/{n}",
                    tags=[],
                    levels=[],
                    segments=[],
                    publish_on=[],
                    weekdays=[],
                    media_kind=media,
                    media_file_id=f"file-{n}" if media else None,
                    status="archived" if n in archived else "active",
                    revision=1,
                    created_at=at,
                    updated_at=at,
                )
            )
        s.add_all(rows)
        await s.commit()
        return [r.id for r in rows]


async def start_form(h: BotHarness, user=ADMIN) -> None:
    await h.send(user, "/start")
    await h.send(user, "/content add")


async def test_add_photo_item_end_to_end(harness: BotHarness, content_dir: Path) -> None:
    picture = jpeg()
    await start_form(harness)
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "library.ask_material")
    await harness.send_photo(ADMIN, picture, file_id="spring-photo", caption="Spring sale: 20% off {link} today")
    assert harness.session.downloads == ["files/spring-photo"]  # the largest size, not the thumbnail
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "library.ask.title")
    await harness.send(ADMIN, "Spring   sale")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "library.ask.text_keep", marker="{link}")
    await harness.send(ADMIN, "-")  # keep the caption
    await harness.send(ADMIN, "https://shop.example.com/spring?x=1")
    await harness.send(ADMIN, "spring, sale #new")
    audience_prompt = harness.session.of("sendMessage", ADMIN.id)[-1]
    assert [b["text"] for b in audience_prompt.buttons()] == ["Everyone"]
    await harness.press(ADMIN, audience_prompt.buttons()[0]["callback_data"])
    harness.session.clear()
    await harness.send(ADMIN, "mon wed")

    [copy] = harness.session.of("sendPhoto", ADMIN.id)
    assert copy.params["photo"] == "spring-photo"
    expected_body = f"<b>Spring sale</b>\n\nSpring sale: 20% off {SAMPLE_LINK} today"
    assert copy.text == expected_body == partner_body("Spring sale", "Spring sale: 20% off {link} today", SAMPLE_LINK)
    [confirm] = harness.session.of("sendMessage", ADMIN.id)
    assert "Tags: #spring #sale #new" in confirm.text
    assert "For: everyone" in confirm.text and "Schedule: Mon, Wed" in confirm.text
    assert [b["text"] for b in confirm.buttons()] == ["✅ Save", "✖️ Cancel"]
    assert await items(harness) == []  # nothing is written before Save

    harness.session.clear()
    await harness.press(ADMIN, lib("save"))
    [item] = await items(harness)
    assert (item.title, item.text, item.url) == (
        "Spring sale",
        "Spring sale: 20% off {link} today",
        "https://shop.example.com/spring?x=1",
    )
    assert (item.tags, item.levels, item.segments) == (["spring", "sale", "new"], [], [])
    assert (item.publish_on, item.weekdays) == ([], [1, 3])
    assert (item.media_kind, item.media_file_id, item.status, item.revision) == ("photo", "spring-photo", "active", 1)
    assert item.created_by == await admin_partner_id(harness)
    path = Path(item.media_path or "")
    assert path.parent == content_dir and path.suffix == ".jpg"
    assert read(item.media_path) == picture
    [saved] = harness.session.of("sendMessage", ADMIN.id)
    assert saved.text == harness.t("en", "library.saved", id=item.id, title="Spring sale")

    async with harness.sessionmaker() as s:
        [event] = (await s.execute(select(Event).where(Event.type == "content_added"))).scalars()
    assert (event.partner_id, event.payload) == (item.created_by, {"content_id": item.id, "via": "chat"})
    [entry] = [r for r in await audit_rows(harness) if r.action == "content_add"]
    assert (entry.actor_tg_id, entry.target, entry.outcome) == (ADMIN_ID, f"#{item.id}", "ok")


async def test_text_item_in_chinese_with_typed_audience_and_dates(harness: BotHarness, content_dir: Path) -> None:
    await start_form(harness, ADMIN_ZH)
    assert harness.session.texts(ADMIN_ID)[-1] == harness.t("zh", "library.ask_material")
    await harness.send(ADMIN_ZH, "新品上市,点击了解 👉")
    await harness.send(ADMIN_ZH, "新品")
    assert harness.session.texts(ADMIN_ID)[-1] == harness.t("zh", "library.ask.text_keep", marker="{link}")
    await harness.send(ADMIN_ZH, "-")
    await harness.send(ADMIN_ZH, "https://shop.example.com/new")
    await harness.send(ADMIN_ZH, "-")
    await harness.send(ADMIN_ZH, "黄金 银牌 高活跃")
    harness.session.clear()
    await harness.send(ADMIN_ZH, "2026-12-05, 2026-12-01 周一")
    copy, confirm = harness.session.of("sendMessage", ADMIN_ID)
    assert copy.text == f"<b>新品</b>\n\n新品上市,点击了解 👉\n\n{SAMPLE_LINK}"
    assert "对象:黄金, 白银 · 高活跃" in confirm.text
    assert "排期:2026-12-01, 2026-12-05, 周一" in confirm.text
    assert "标签:无" in confirm.text
    assert [b["text"] for b in confirm.buttons()] == ["✅ 保存", "✖️ 取消"]
    await harness.press(ADMIN_ZH, lib("save"))
    [item] = await items(harness)
    assert (item.media_kind, item.media_file_id, item.media_path) == (None, None, None)
    assert (item.text, item.tags) == ("新品上市,点击了解 👉", [])
    assert (item.levels, item.segments) == (["gold", "silver"], ["high"])
    assert (item.publish_on, item.weekdays) == (["2026-12-01", "2026-12-05"], [1])
    assert harness.session.texts(ADMIN_ID)[-1] == harness.t("zh", "library.saved", id=item.id, title="新品")
    assert files_in(content_dir) == []


async def test_bad_values_are_explained_and_asked_again(harness: BotHarness, content_dir: Path) -> None:
    await start_form(harness)
    await harness.send_photo(ADMIN, jpeg(), file_id="p1")
    harness.session.clear()
    await harness.send(ADMIN, "x" * 121)
    await harness.send(ADMIN, "Title")
    await harness.send(ADMIN, "-")  # a photo without caption: there is no text to keep
    await harness.send(ADMIN, "y" * 1000)  # over the caption room left for the link
    await harness.send(ADMIN, "Share me")
    await harness.send(ADMIN, "ftp://files.example.com/a.zip")
    await harness.send(ADMIN, "https://shop.example.com")
    await harness.send(ADMIN, "-")
    await harness.send(ADMIN, "platinum")
    await harness.send(ADMIN, "gold")
    await harness.send(ADMIN, "someday")
    await harness.send(ADMIN, "2026-02-30")
    t = harness.translator.texts("en")
    texts = harness.session.texts(ADMIN.id)
    assert texts[:12] == [
        t("content.error.title_long", limit=120, length=121),
        t("library.ask.text", marker="{link}"),
        t("content.error.text_empty"),
        t("content.error.text_long", limit=944, length=1000),
        t("library.ask.url"),
        t("content.error.url"),
        t("library.ask.tags"),
        t("library.ask.audience", levels="member, silver, gold", segments="high, mid, low"),
        t("content.error.audience", word="platinum", levels="member, silver, gold", segments="high, mid, low"),
        t("library.ask.schedule"),
        t("content.error.schedule", value="someday"),
        t("content.error.date", value="2026-02-30"),
    ]
    # still at the schedule step: a valid answer goes on to the preview
    harness.session.clear()
    await harness.send(ADMIN, "weekdays")
    assert len(harness.session.of("sendPhoto", ADMIN.id)) == 1
    assert "Schedule: Mon, Tue, Wed, Thu, Fri" in harness.session.texts(ADMIN.id)[-1]
    assert await items(harness) == []


async def test_cancel_mid_form_saves_nothing_and_drops_the_file(harness: BotHarness, content_dir: Path) -> None:
    await start_form(harness)
    await harness.send_photo(ADMIN, jpeg(), file_id="p1")
    assert len(files_in(content_dir)) == 1
    await harness.send(ADMIN, "A title")
    await harness.send(ADMIN, "/cancel")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "library.cancelled")
    assert files_in(content_dir) == []
    harness.session.clear()
    await harness.send(ADMIN, "https://shop.example.com")  # the form is gone: plain free text now
    assert harness.session.texts(ADMIN.id) == [harness.t("en", "fallback.free_text")]
    assert await items(harness) == []
    assert [r.action for r in await audit_rows(harness)] == []

    # [Cancel] on the preview does the same
    await harness.send(ADMIN, "/content add")
    for answer in ("Just text", "T", "-", "https://a.example.com", "-", "all", "-"):
        await harness.send(ADMIN, answer)
    await harness.press(ADMIN, lib("cancel"))
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "library.cancelled")
    harness.session.clear()
    await harness.press(ADMIN, lib("save"))  # a stale Save button
    assert harness.session.of("answerCallbackQuery")[0].params["text"] == harness.t("en", "fallback.stale_button")
    assert await items(harness) == []


async def test_oversized_and_unsupported_material_is_refused(harness: BotHarness, content_dir: Path) -> None:
    await start_form(harness)
    harness.session.clear()
    await harness.send_photo(ADMIN, b"big", file_id="big", file_size=11 * MB)
    await harness.send_file(ADMIN, "video", b"big", file_id="v", file_size=25 * MB, width=1, height=1, duration=1)
    await harness.send_media(
        ADMIN,
        sticker={
            "file_id": "st",
            "file_unique_id": "stu",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    )
    await harness.send_file(ADMIN, "voice", b"ogg", file_id="vo", duration=3)
    await harness.send_file(ADMIN, "document", b"%PDF", file_id="pdf", mime_type="application/pdf", file_name="a.pdf")
    await harness.send_file(ADMIN, "document", b"not a png", file_id="fake", mime_type="image/png", file_name="x.png")
    t = harness.translator.texts("en")
    assert harness.session.texts(ADMIN.id) == [
        t("content.error.too_big", size_mb="11.0"),
        t("content.error.too_big", size_mb="25.0"),
        t("content.error.media_type"),
        t("content.error.media_type"),
        t("content.error.media_type"),
        t("content.error.image_unreadable"),
    ]
    assert harness.session.downloads == ["files/fake"]  # only the one that passed the checks was fetched
    assert files_in(content_dir) == []  # and removed again
    # the form still waits for material
    harness.session.clear()
    await harness.send_photo(ADMIN, jpeg(), file_id="ok")
    assert harness.session.texts(ADMIN.id) == [t("library.ask.title")]


async def test_picture_sent_as_a_file_and_a_video(harness: BotHarness, content_dir: Path) -> None:
    png = jpeg(fmt="PNG")
    await start_form(harness)
    await harness.send_file(ADMIN, "document", png, file_id="doc-png", mime_type="image/png", file_name="poster.png")
    for answer in ("Poster", "Look {link}", "https://a.example.com", "-", "all"):
        await harness.send(ADMIN, answer)
    harness.session.clear()
    await harness.send(ADMIN, "-")
    [copy] = harness.session.of("sendPhoto", ADMIN.id)
    assert copy.params["photo"].startswith("<upload:")  # a document's file id can't be sent as a photo
    await harness.press(ADMIN, lib("save"))
    [item] = await items(harness)
    assert (item.media_kind, item.media_file_id) == ("photo", "photo-1")  # the id Telegram gave the uploaded photo
    assert Path(item.media_path or "").suffix == ".png" and read(item.media_path) == png

    await harness.send(ADMIN, "/content add")
    await harness.send_file(
        ADMIN, "video", b"\x00\x00video", file_id="vid", mime_type="video/mp4", width=720, height=1280, duration=5
    )
    for answer in ("Clip", "Watch", "https://a.example.com/v", "video", "all"):
        await harness.send(ADMIN, answer)
    harness.session.clear()
    await harness.send(ADMIN, "-")
    [video] = harness.session.of("sendVideo", ADMIN.id)
    assert (video.params["video"], video.text) == ("vid", f"<b>Clip</b>\n\nWatch\n\n{SAMPLE_LINK}")
    await harness.press(ADMIN, lib("save"))
    clip = (await items(harness))[-1]
    assert (clip.media_kind, clip.media_file_id, clip.tags) == ("video", "vid", ["video"])
    assert read(clip.media_path) == b"\x00\x00video"


async def test_list_pages_newest_first_archived_last(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    ids = await seed(harness, 7, archived=(6,))  # the newest one is archived
    harness.session.clear()
    await harness.send(ADMIN, "/content")
    [listing] = harness.session.of("sendMessage", ADMIN.id)
    assert listing.text == harness.t("en", "library.list", total=7, page=1, pages=2)
    buttons = listing.buttons()
    assert [b["text"] for b in buttons] == [f"📝 #{ids[n]} Item {n}" for n in (5, 4, 3, 2, 1)] + ["Next ▶"]
    assert buttons[0]["callback_data"] == lib("open", item=ids[5])
    assert buttons[-1]["callback_data"] == lib("page", page=1)

    harness.session.clear()
    await harness.press(ADMIN, lib("page", page=1), message_id=77)
    [edit] = harness.session.of("editMessageText", ADMIN.id)
    assert edit.params["message_id"] == 77
    assert edit.text == harness.t("en", "library.list", total=7, page=2, pages=2)
    assert [b["text"] for b in edit.buttons()] == [f"📝 #{ids[0]} Item 0", f"🗄 #{ids[6]} Item 6", "◀ Prev"]
    assert edit.buttons()[1]["callback_data"] == lib("open", item=ids[6], page=1)


async def test_empty_list_and_unknown_item(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    harness.session.clear()
    await harness.send(ADMIN, "/content")
    await harness.send(ADMIN, "/content 424242")
    await harness.send(ADMIN, "/content frobnicate")
    assert harness.session.texts(ADMIN.id) == [
        harness.t("en", "library.empty"),
        harness.t("en", "library.not_found", id=424242),
        harness.t("en", "library.usage"),
    ]


async def test_preview_and_edit_title_bumps_revision(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    [item_id] = await seed(harness, 1, media="photo")
    harness.session.clear()
    await harness.press(ADMIN, lib("open", item=item_id))
    [copy] = harness.session.of("sendPhoto", ADMIN.id)
    assert (copy.params["photo"], copy.text) == ("file-0", f"<b>Item 0</b>\n\nText 0\n\n{SAMPLE_LINK}")
    [details] = harness.session.of("sendMessage", ADMIN.id)
    assert details.text.startswith(f"📄 <b>#{item_id}</b> · 🟢 active · revision 1\n<b>Item 0</b> · 🖼 photo")
    assert [b["text"] for b in details.buttons()] == [
        "Edit title", "Edit text", "Edit URL", "Edit tags", "Audience", "Schedule", "🗄 Archive", "« Back",
    ]  # fmt: skip
    assert details.buttons()[0]["callback_data"] == lib("edit", item=item_id, field="title")

    harness.session.clear()
    await harness.press(ADMIN, lib("edit", item=item_id, field="title"))
    assert harness.session.texts(ADMIN.id) == [harness.t("en", "library.edit.title", current="Item 0")]
    harness.clock.advance(timedelta(hours=1))
    await harness.send(ADMIN, "  ")  # an empty title is refused, the question stands
    await harness.send(ADMIN, "Winter <sale>")
    texts = harness.session.texts(ADMIN.id)
    assert texts[1] == harness.t("en", "content.error.title_empty")
    assert texts[2].startswith(harness.t("en", "library.updated"))
    assert "revision 2" in texts[2] and "<b>Winter &lt;sale&gt;</b>" in texts[2]
    [item] = await items(harness)
    assert (item.title, item.revision) == ("Winter <sale>", 2)
    assert item.updated_at.replace(tzinfo=None) == (START + timedelta(hours=1)).replace(tzinfo=None)
    [entry] = [r for r in await audit_rows(harness) if r.action == "content_edit"]
    assert (entry.target, entry.outcome, entry.details) == (f"#{item_id}", "ok", {"field": "title"})

    # the same tags again change nothing: no new revision
    await harness.press(ADMIN, lib("edit", item=item_id, field="tags"))
    await harness.send(ADMIN, "-")
    assert harness.session.texts(ADMIN.id)[-1].startswith(harness.t("en", "library.unchanged"))
    assert (await items(harness))[0].revision == 2


async def test_edit_audience_schedule_url_and_text(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    [item_id] = await seed(harness, 1)
    await harness.press(ADMIN, lib("edit", item=item_id, field="audience"))
    await harness.send(ADMIN, "silver low")
    await harness.press(ADMIN, lib("edit", item=item_id, field="schedule"))
    await harness.send(ADMIN, "2026-12-24 sat sun")
    await harness.press(ADMIN, lib("edit", item=item_id, field="url"))
    await harness.send(ADMIN, "javascript:alert(1)")
    await harness.send(ADMIN, "https://shop.example.com/xmas")
    await harness.press(ADMIN, lib("edit", item=item_id, field="text"))
    await harness.send(ADMIN, "Merry {link}")
    [item] = await items(harness)
    assert (item.levels, item.segments, item.publish_on, item.weekdays) == (["silver"], ["low"], ["2026-12-24"], [6, 7])
    assert (item.url, item.text, item.revision) == ("https://shop.example.com/xmas", "Merry {link}", 5)
    assert harness.t("en", "content.error.url") in harness.session.texts(ADMIN.id)

    harness.session.clear()
    await harness.press(ADMIN, lib("edit", item=item_id, field="audience"))
    prompt = harness.session.of("sendMessage", ADMIN.id)[-1]
    assert "Now: Silver · less active" in prompt.text
    await harness.press(ADMIN, prompt.buttons()[0]["callback_data"])  # [Everyone]
    [item] = await items(harness)
    assert (item.levels, item.segments, item.revision) == ([], [], 6)
    assert "For: everyone" in harness.session.texts(ADMIN.id)[-1]


async def test_archive_and_restore(harness: BotHarness) -> None:
    await harness.send(ADMIN, "/start")
    [item_id] = await seed(harness, 1)
    harness.session.clear()
    await harness.press(ADMIN, lib("archive", item=item_id, page=1), message_id=55)
    [toast] = harness.session.of("answerCallbackQuery")
    assert toast.params["text"] == harness.t("en", "library.archived_toast")
    [edit] = harness.session.of("editMessageText", ADMIN.id)
    assert edit.params["message_id"] == 55 and "🗄 archived · revision 2" in edit.text
    assert [b["text"] for b in edit.buttons()][-2:] == ["♻️ Restore", "« Back"]
    assert edit.buttons()[-1]["callback_data"] == lib("page", page=1)
    assert [(i.status, i.revision) for i in await items(harness)] == [("archived", 2)]

    harness.session.clear()
    await harness.send(ADMIN, f"/content restore {item_id}")
    await harness.send(ADMIN, f"/content restore {item_id}")  # already active: nothing changes
    assert harness.session.texts(ADMIN.id)[0] == harness.t("en", "library.restored", id=item_id, title="Item 0")
    assert [(i.status, i.revision) for i in await items(harness)] == [("active", 3)]
    rows = [(r.action, r.outcome) for r in await audit_rows(harness)]
    assert rows == [("content_archive", "ok"), ("content_restore", "ok"), ("content_restore", "noop")]


async def test_partner_cannot_use_content(harness: BotHarness, content_dir: Path) -> None:
    await harness.send(ALICE, "/start")
    [item_id] = await seed(harness, 1)
    harness.session.clear()
    await harness.send(ALICE, "/content")
    await harness.send(ALICE, "/content add")
    await harness.send_photo(ALICE, jpeg(), file_id="sneaky")
    await harness.send(ALICE, f"/content archive {item_id}")
    await harness.press(ALICE, lib("archive", item=item_id))
    texts = harness.session.texts(ALICE.id)
    denied = harness.t("en", "denied.admin")
    assert texts[:2] == [denied, denied] and texts[3] == denied
    assert harness.session.downloads == []
    [press] = harness.session.of("answerCallbackQuery")
    assert press.params["text"] == harness.t("en", "fallback.stale_button")
    assert [(i.status, i.revision) for i in await items(harness)] == [("active", 1)]
    rows = await audit_rows(harness)
    assert [(r.action, r.outcome, r.actor_tg_id) for r in rows] == [("content", "denied", ALICE.id)] * 3
    async with harness.sessionmaker() as s:
        assert (
            await s.execute(select(func.count()).select_from(Event).where(Event.type == "content_added"))
        ).scalar_one() == 0
