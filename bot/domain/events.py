"""The behaviour event catalogue.

Every partner action is recorded as one append-only event. Dashboards, the rules engine and
playbooks read these; the catalogue below is the contract between them.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """Types of behaviour events. The value is what is stored in `events.type`."""

    REGISTERED = "registered"
    INVITED = "invited"
    LANGUAGE_CHANGED = "language_changed"
    PROFILE_VIEWED = "profile_viewed"
    LINK_REQUESTED = "link_requested"
    CARD_GENERATED = "card_generated"
    ROLE_GRANTED = "role_granted"
    ROLE_REVOKED = "role_revoked"
    SETTINGS_CHANGED = "settings_changed"
    BROADCAST_STARTED = "broadcast_started"
    CONTENT_ADDED = "content_added"
    CONTENT_SENT = "content_sent"
    POSTER_MADE = "poster_made"
    SHARED = "shared"
    LINK_CLICKED = "link_clicked"
    LEAD_ADDED = "lead_added"
    FOLLOWED_UP = "followed_up"
    ORDER_ATTRIBUTED = "order_attributed"
    REVISITED = "revisited"
    QUOTE_SENT = "quote_sent"
    ORDER_REGISTERED = "order_registered"
    COUPON_ISSUED = "coupon_issued"
    COUPON_REDEEMED = "coupon_redeemed"
    EVENT_INVITED = "event_invited"
    RSVP = "rsvp"
    PROFILE_COMPLETED = "profile_completed"
    TERMS_ACCEPTED = "terms_accepted"
    COURSE_COMPLETED = "course_completed"
    LESSON_PASSED = "lesson_passed"
    POINTS_EARNED = "points_earned"
    SEGMENT_CHANGED = "segment_changed"
    SPRINT_WON = "sprint_won"
    STORY_SUBMITTED = "story_submitted"
    STORY_APPROVED = "story_approved"
    STREAK_FREEZE_USED = "streak_freeze_used"


class EventSource(StrEnum):
    """Where an event came from."""

    BOT = "bot"
    WEB = "web"
    API = "api"
    SCHEDULER = "scheduler"
    ADMIN = "admin"


EVENT_CATALOGUE: dict[EventType, str] = {
    EventType.REGISTERED: "A person became a partner through /start. Payload: upline_id, binding.",
    EventType.INVITED: "Recorded for the upline when someone joins through their code. Payload: recruit_id.",
    EventType.LANGUAGE_CHANGED: "The partner switched language with /lang. Payload: language.",
    EventType.PROFILE_VIEWED: "The partner opened /me.",
    EventType.LINK_REQUESTED: "The partner asked for their recruit link with /link.",
    EventType.CARD_GENERATED: "The partner generated their profile card with its QR code.",
    EventType.ROLE_GRANTED: "An admin granted this partner a role. Payload: role, by.",
    EventType.ROLE_REVOKED: "An admin revoked this partner's role. Payload: role, by.",
    EventType.SETTINGS_CHANGED: "The partner changed /settings. Payload: the changed fields.",
    EventType.BROADCAST_STARTED: "An admin started a broadcast. Payload: broadcast_id, audience, recipients.",
    EventType.CONTENT_ADDED: "An admin added or imported a content item (recorded for the admin, partner_id may be "
    "empty for imports). Payload: content_id, via (chat | import).",
    EventType.CONTENT_SENT: "A content item reached the partner in their daily pack or /today. Payload: content_id, "
    "channel (push | today), day (the partner's local date).",
    EventType.POSTER_MADE: "The partner got a personal poster of an item. Payload: content_id, template, cached "
    "(true when Telegram's stored copy was sent again without rendering).",
    EventType.SHARED: "The partner shared a piece of content. Payload: content_id, channel (inline: chosen from "
    "the inline mode, with result (text | photo | poster); manual: the [Shared ✓] button, at most once per item "
    "per local day).",
    EventType.LINK_CLICKED: "Someone opened the partner's tracked link /r/<slug>. Payload: slug, content_id, "
    "product_id, visitor (keyed hash of IP and user agent; no raw IP), referer, counted (false for a repeat from "
    "the same visitor within 30 minutes or a bot), bot.",
    EventType.LEAD_ADDED: "The partner added a prospect. Payload: lead_id, source (command | form | forward | "
    "contact).",
    EventType.FOLLOWED_UP: "The partner logged a follow-up on a prospect. Payload: lead_id, followup_id, channel, "
    "revisit.",
    EventType.REVISITED: "The follow-up was a revisit (回访): the lead's reminder had come due, or the deal was "
    "already won. Recorded beside followed_up. Payload: lead_id, followup_id, reason (due | won).",
    EventType.QUOTE_SENT: "The partner quoted a lead. Payload: quote_id, lead_id, sku, quantity, total_minor, "
    "currency.",
    EventType.ORDER_REGISTERED: "The partner registered an offline order in chat for an admin to confirm. "
    "Payload: chat_order_id, lead_id, sku, quantity, amount_minor, currency.",
    EventType.COUPON_ISSUED: "The partner took a personal code of a coupon campaign. Payload: campaign_id, code.",
    EventType.COUPON_REDEEMED: "An order used the partner's coupon. Payload: code, order_id.",
    EventType.EVENT_INVITED: "The partner invited a lead to an event. Payload: event_id, invitation_id, lead_id.",
    EventType.RSVP: "A lead answered an invitation on its RSVP page (recorded for the inviting partner, source "
    "web). Payload: event_id, invitation_id, lead_id, attending.",
    EventType.ORDER_ATTRIBUTED: "An order was attributed to the partner. Payload: order_id, amount_minor, currency.",
    EventType.PROFILE_COMPLETED: "The partner finished their profile in the 7-day start: shared their phone through "
    "Telegram's contact button or skipped it. Payload: phone (true when shared).",
    EventType.TERMS_ACCEPTED: "The partner accepted the program terms (the 7-day start's welcome button).",
    EventType.COURSE_COMPLETED: "The partner passed every lesson of a course in /learn. Payload: course (its key).",
    EventType.LESSON_PASSED: "The partner passed a lesson's quiz in /learn (once per lesson). Payload: course, "
    "lesson (their keys).",
    EventType.POINTS_EARNED: "The partner earned points, e.g. for a playbook step (source scheduler or bot). "
    "Payload: points, reason (e.g. playbook:onboarding_7day:first_share).",
    EventType.SEGMENT_CHANGED: "The daily segmentation moved the partner to another activity segment (source "
    "scheduler). Payload: previous (null on the first run), segment (high | mid | low).",
    EventType.SPRINT_WON: "The partner finished a monthly sprint among its winners (source scheduler). "
    "Payload: sprint_id, rank, metric, value.",
    EventType.STORY_SUBMITTED: "The partner submitted a case story with /story. Payload: story_id, photo (true when "
    "a photo came with it).",
    EventType.STORY_APPROVED: "An admin approved the partner's case story (recorded for the author, source admin). "
    "Payload: story_id, by, featured_on (the day whose daily pack features it).",
    EventType.STREAK_FREEZE_USED: "A streak freeze covered a local day without a share or follow-up, so the streak "
    "goes on (source scheduler). Payload: day (ISO date), freezes_left.",
}
