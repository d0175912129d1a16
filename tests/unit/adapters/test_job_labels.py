"""Every job of the bank's calendar has a name on the operations page, in both languages."""

from __future__ import annotations

from microlend import worker
from microlend.web.i18n import translations
from microlend.web.operations import KIND_LABELS


def test_every_job_kind_is_named_in_english_and_chinese() -> None:
    assert set(KIND_LABELS) == set(worker.JOBS)
    zh = translations("zh_CN")
    untranslated = [label for label in KIND_LABELS.values() if zh.gettext(label) == label]
    assert untranslated == []
