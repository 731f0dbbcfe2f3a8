"""Counting visits of a share link: one row per code and day, moved by one UPDATE with F() so
parallel visits never lose a count (the first visit of a day inserts the row, race-safe)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from referrals.models import ShareVisit


def share_visit_count(*, code_id: int) -> None:
    day = timezone.localdate()
    if ShareVisit.objects.filter(code_id=code_id, day=day).update(visits=F("visits") + 1):
        return
    try:
        with transaction.atomic():
            ShareVisit.objects.create(code_id=code_id, day=day, visits=1)
    except IntegrityError:  # another visit created today's row first
        ShareVisit.objects.filter(code_id=code_id, day=day).update(visits=F("visits") + 1)
