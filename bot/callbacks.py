"""Typed callback data for every inline button (Telegram allows 64 bytes).

A wire format shared by the handlers that parse presses and the services and jobs that put
keyboards into outbox rows.
"""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

Id = Annotated[int, Field(ge=0, le=2**63 - 1)]
"""A row id (BIGINT). Callback data is whatever the client sends: out of range, a forged press does not match its
handler (it gets the stale-button answer) instead of overflowing the database driver."""
Index = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""A page, a version number or a quiz index: small, never negative."""


class LanguageCallback(CallbackData, prefix="lang"):
    language: str


class ProfileCallback(CallbackData, prefix="me"):
    action: str


class SettingsCallback(CallbackData, prefix="set"):
    action: str
    """menu (open a field's choices) | set (apply a value) | back."""
    field: str
    """tz | push | quiet."""
    value: str = ""


class BroadcastCallback(CallbackData, prefix="bc"):
    action: str
    """everyone | role | team | codes | level | segment (audience choice) · confirm | abort (preview) · stop."""
    value: str = ""


class ContentCallback(CallbackData, prefix="ct"):
    action: str
    """poster | shared | copy — on an item of the daily pack."""
    id: Id


class LibraryCallback(CallbackData, prefix="lib"):
    """The material center (/content): `lib:<action>:<item>:<page>:<field>`."""

    action: str
    """page (list page `page`) · open (item) · edit (ask for `field`) · archive | restore · everyone (audience
    button, in the form or an edit) · save | cancel (the add form's preview)."""
    item: Id = 0
    page: Index = 0
    """The list page to go back to."""
    field: str = ""
    """title | text | url | tags | audience | schedule, for `edit`."""


class WalletCallback(CallbackData, prefix="wal"):
    action: str
    """rates — the plan's rates for the partner's level and the next one."""


class RulesCallback(CallbackData, prefix="ru"):
    """The commission plan's versions (/rules): `ru:<action>:<version>:<check>`."""

    action: str
    """file (send the plan file of `version`) · publish (confirmed) | cancel — on the publish confirmation."""
    version: Index = 0
    check: str = ""
    """The first characters of the draft's checksum: a publish press for a draft replaced since is refused."""


class PayoutCallback(CallbackData, prefix="po"):
    """A withdrawal request's buttons in /payouts: `po:<action>:<id>`."""

    action: str
    """approve · reject (asks for the reason) · pay (asks for the payment reference)."""
    id: Id


class OrdersCsvCallback(CallbackData, prefix="oc"):
    action: str
    """import | cancel — on the preview of an admin's CSV of orders."""


class PoolCallback(CallbackData, prefix="pl"):
    """A dividend pool's buttons in /pools and in the period-end preview: `pl:<action>:<pool>:<period>`."""

    action: str
    """preview (show the split) · post (post it to the ledger; once per pool and period)."""
    pool: str
    period: str
    """The period label: 2026-11, 2026-W48, 2026-Q4."""


class FlagCallback(CallbackData, prefix="fl"):
    """A held order's flag in /flags: `fl:<action>:<id>`."""

    action: str
    """release · void."""
    id: Id


class LeadCallback(CallbackData, prefix="ld"):
    """A prospect's buttons: `ld:<action>:<lead id>:<value>`.

    open · fu (log a follow-up) · ch (its channel, `value`) · skip (a form step) · remind (ask when) · at (a
    preset time, `value`) · stage (the stage menu) · set (stage `value`) · quote | invite (how to) · won | lost ·
    done | snooze (`value` 1d | 1w) on a fired reminder · dup (add a duplicate anyway) · del | keep (confirm a
    deletion). The service checks the lead is the presser's own."""

    action: str
    id: Id = 0
    value: str = ""


class LeadListCallback(CallbackData, prefix="lds"):
    """A page of /leads: `lds:<kind>:<page>:<query>`; kind is all | overdue | a stage key | q (search)."""

    kind: str = "all"
    page: Index = 0
    query: str = ""


class CampaignCallback(CallbackData, prefix="cmp"):
    """A coupon campaign's button in /campaign: `cmp:<action>:<id>`."""

    action: str
    """activate · deactivate."""
    id: Id


class CouponCallback(CallbackData, prefix="cpn"):
    """A campaign offered in /coupon: `cpn:take:<campaign id>` issues (or shows again) the partner's code."""

    action: str
    """take."""
    id: Id


class ProgramEventCallback(CallbackData, prefix="pev"):
    """An event's button in /event: `pev:<action>:<id>`."""

    action: str
    """cancel."""
    id: Id


class ChatOrderCallback(CallbackData, prefix="cho"):
    """An offline order registered in chat, in the admins' notice and in /orders: `cho:<action>:<id>:<src>`."""

    action: str
    """confirm · reject (asks for the reason)."""
    id: Id
    src: str = "n"
    """n: the notice (the pressed message loses its buttons) · l: the /orders list (it is redrawn)."""


class ProductPageCallback(CallbackData, prefix="prd"):
    """A page of the product catalogue in /product: `prd:<page>` (from 0)."""

    page: Index


class PlaybookCallback(CallbackData, prefix="pbk"):
    """A playbook message's button: `pbk:<action>:<arg>`."""

    action: str
    """terms_accept · profile_skip (named callbacks of the YAML) · cmd (a command button: `arg` is the command)."""
    arg: str = ""


class PlaybookAdminCallback(CallbackData, prefix="pba"):
    """/playbooks: `pba:pause|resume:<playbook>` for everyone."""

    action: str
    playbook: str


class CourseCallback(CallbackData, prefix="crs"):
    """/learn: `crs:<action>:<course>:<lesson>:<q>:<a>` (course and lesson keys are at most 16 characters).

    open (the course: its next lesson, or the review list once completed) · read (a lesson) · quiz (start the
    lesson's quiz) · ans (answer `a` to question `q`, both from 0) · list (back to /learn)."""

    action: str
    course: str = ""
    lesson: str = ""
    q: Index = 0
    a: Index = 0


class StoryCallback(CallbackData, prefix="sty"):
    """An admin's notice of a new case story: `sty:approve|reject:<story id>` (reject asks for the reason)."""

    action: str
    id: Id


class StoriesPageCallback(CallbackData, prefix="stp"):
    """A page of /stories: `stp:<page>` (from 0, newest first)."""

    page: Index


class RankCallback(CallbackData, prefix="rk"):
    """/rank's switches: `rk:<period>:<scope>:<metric>` (today|week|month|sprint, network|team,
    points|shares|orders|gmv) shows that board."""

    period: str
    scope: str
    metric: str


class DigestCallback(CallbackData, prefix="dig"):
    """A team digest's button: `dig:nudge` (nudge the lead's dormant members; the role is checked on press)."""

    action: str
