"""Tier 1: the shipped playbook files validate against the real locale keys and event catalogue, and a broken
file fails with messages naming the file, the step and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.i18n import LOCALES_DIR, Translator, placeholders
from playbooks.loader import PLAYBOOKS_DIR, load_all, locale_text_keys
from playbooks.schema import Playbook, PlaybookError, Rhythm, Vocabulary, parse_playbook_file


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary(locale_text_keys(LOCALES_DIR))


def test_shipped_files_validate(vocabulary: Vocabulary) -> None:
    catalog = load_all(PLAYBOOKS_DIR, vocabulary=vocabulary)
    assert set(catalog.playbooks) == {"onboarding_7day"}
    assert set(catalog.rhythms) == {"tiered_ops"}
    onboarding = catalog.playbooks["onboarding_7day"]
    assert onboarding.name.zh == "新人7天启动"
    assert onboarding.days == 7
    days = [step.trigger.day for step in onboarding.steps]
    assert days == [None, 1, 2, 3, 4, 5, 6, 7]
    assert onboarding.steps[0].trigger.on_join
    assert all(len(step.nudges) <= 2 for step in onboarding.steps)
    assert onboarding.steps[-1].reward is not None
    assert onboarding.steps[-1].reward.badge == "starter_7day"
    day4 = onboarding.steps[4].expect
    assert day4 is not None
    assert day4.any_of is not None
    assert {e.event for e in day4.any_of} == {"poster_made", "event_invited"}
    tiered = catalog.rhythms["tiered_ops"]
    assert [s.key for s in tiered.segments] == ["high", "mid", "low"]
    low = tiered.segments[-1].touches[0]
    assert (low.every_days, low.stop_after_unanswered) == (3, 3)
    assert tiered.metrics_needed <= {"shares_7d", "shares_30d", "followups_7d", "sales_30d"}


def test_message_params_exist_in_both_languages(vocabulary: Vocabulary) -> None:
    """Texts of onboarding steps take {day} and {total}; the review takes the params the step names."""
    catalogs = Translator.load("zh").catalogs
    onboarding = load_all(PLAYBOOKS_DIR, vocabulary=vocabulary).playbooks["onboarding_7day"]
    for step in onboarding.steps:
        keys = [step.message.text, *(n.text for n in step.nudges)]
        for key in keys:
            for lang in ("zh", "en"):
                assert placeholders(catalogs[lang][key]) == {"day", "total", *step.message.params}, (lang, key)


SHIPPED = (PLAYBOOKS_DIR / "onboarding_7day.yaml").read_text(encoding="utf-8")
RHYTHM = (PLAYBOOKS_DIR / "tiered_ops.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "{event: lead_added}",
            "{event: lead_add}",
            "onboarding_7day.yaml: steps[2] (first_lead): expect.any_of[0].event: unknown event type 'lead_add'",
        ),
        (
            "text: playbooks.onboarding.first_followup\n",
            "text: playbooks.onboarding.nope\n",
            "onboarding_7day.yaml: steps[3] (first_followup): message.text: unknown text key "
            "'playbooks.onboarding.nope'",
        ),
        (
            "{text: playbooks.onboarding.first_share_nudge2, after_hours: 5}",
            "{text: playbooks.onboarding.first_share_nudge2, after_hours: 5, colour: red}",
            "onboarding_7day.yaml: steps[1] (first_share): nudges[1].colour: unknown field",
        ),
        (
            "trigger: {day: 2}",
            'trigger: {day: "2"}',
            "onboarding_7day.yaml: steps[2] (first_lead): trigger.day: Input should be a valid integer",
        ),
        (
            "trigger: {day: 3}",
            "trigger: {day: 3, event: shared}",
            "onboarding_7day.yaml: steps[3] (first_followup): trigger: a trigger is exactly one of on_join, day, "
            "event or condition",
        ),
        (
            "    skip: {when_next_due: true}\n\n  - key: first_lead",
            '    skip: {when: "sharez_7d > 1"}\n\n  - key: first_lead',
            "onboarding_7day.yaml: steps[1] (first_share): skip.when: unknown metric 'sharez_7d', did you mean "
            "'shares_7d'?",
        ),
        (
            "      - {text: playbooks.onboarding.first_lead_nudge2, after_hours: 5}",
            "      - {text: playbooks.onboarding.first_lead_nudge2, after_hours: 5}\n"
            "      - {text: playbooks.onboarding.first_lead_nudge2, after_hours: 5}",
            "onboarding_7day.yaml: steps[2] (first_lead): nudges: Tuple should have at most 2 items",
        ),
        (
            "if_none_done: [welcome,",
            "if_none_done: [later,",
            "onboarding_7day.yaml: steps[7] (celebration): skip.if_none_done: not an earlier step: later",
        ),
        (
            "action: {command: /today}}]\n    expect: {any_of: [{event: shared}]",
            "action: {command: today}}]\n    expect: {any_of: [{event: shared}]",
            "onboarding_7day.yaml: steps[1] (first_share): message.buttons[0].action.command: String should match",
        ),
        (
            "expect: {any_of: [{event: followed_up}], deadline_hours: 6}",
            "expect: {any_of: [{event: followed_up}]}",
            "onboarding_7day.yaml: steps[3] (first_followup): expect: set exactly one of deadline_hours or "
            "deadline_end_of_day",
        ),
        (
            "  - key: first_lead\n",
            "  - key: first_share\n",
            "onboarding_7day.yaml: steps[2] (first_share): key: step key 'first_share' is used twice",
        ),
    ],
    ids=[
        "event-type",
        "text-key",
        "unknown-field",
        "strict-int",
        "two-triggers",
        "condition",
        "three-nudges",
        "skip-step",
        "command",
        "deadline",
        "duplicate-step",
    ],
)
def test_broken_playbook_names_file_step_and_field(vocabulary: Vocabulary, old: str, new: str, expected: str) -> None:
    assert SHIPPED.count(old) == 1, old
    with pytest.raises(PlaybookError) as raised:
        parse_playbook_file(SHIPPED.replace(old, new), "onboarding_7day.yaml", vocabulary)
    assert any(issue.startswith(expected) for issue in raised.value.issues), raised.value.issues


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'when: "shares_7d >= 5',
            "when: \"shares_7d >= 'x'",
            "tiered_ops.yaml: segments[0] (high): when: ",
        ),
        (
            "        stop_after_unanswered: 3\n",
            "        stop_after_unanswered: 3\n        expect_nothing: true\n",
            "tiered_ops.yaml: segments[2] (low): touches[0].expect_nothing: unknown field",
        ),
        (
            "        expect: [{event: shared}, {event: followed_up}, {event: lead_added}]\n",
            "",
            "tiered_ops.yaml: segments[2] (low): touches[0]: stop_after_unanswered needs the events",
        ),
        (
            "    name: {zh: 低活跃, en: Low activity}\n",
            '    name: {zh: 低活跃, en: Low activity}\n    when: "shares_7d == 0"\n',
            "tiered_ops.yaml: segments[2] (low): when: the last segment (low) takes everyone else",
        ),
    ],
    ids=["condition-type", "unknown-field", "stop-needs-expect", "last-segment"],
)
def test_broken_rhythm_names_file_segment_and_field(vocabulary: Vocabulary, old: str, new: str, expected: str) -> None:
    assert RHYTHM.count(old) == 1, old
    with pytest.raises(PlaybookError) as raised:
        parse_playbook_file(RHYTHM.replace(old, new), "tiered_ops.yaml", vocabulary)
    assert any(issue.startswith(expected) for issue in raised.value.issues), raised.value.issues


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a list", "x.yaml: a playbook file is a mapping"),
        ("kind: plan", "x.yaml: kind: must be 'playbook' or 'rhythm'"),
        ("kind: playbook\nkey: [", "x.yaml: not valid YAML"),
    ],
)
def test_not_a_playbook(vocabulary: Vocabulary, text: str, expected: str) -> None:
    with pytest.raises(PlaybookError, match="^" + expected.replace("(", r"\(").replace(")", r"\)")):
        parse_playbook_file(text, "x.yaml", vocabulary)


def test_loader_reports_every_file_and_duplicate_keys(tmp_path: Path, vocabulary: Vocabulary) -> None:
    (tmp_path / "a.yaml").write_text(SHIPPED, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(SHIPPED, encoding="utf-8")
    (tmp_path / "c.yaml").write_text(RHYTHM.replace("every_days: 3\n        expect", "every_days: 0\n        expect"))
    with pytest.raises(PlaybookError) as raised:
        load_all(tmp_path, vocabulary=vocabulary)
    assert raised.value.issues[0] == "b.yaml: key: 'onboarding_7day' is used by another file"
    assert raised.value.issues[1].startswith("c.yaml: segments[2] (low): touches[0].every_days: ")
    assert isinstance(parse_playbook_file(SHIPPED, "a.yaml", vocabulary), Playbook)
    assert isinstance(parse_playbook_file(RHYTHM, "c.yaml", vocabulary), Rhythm)
