"""python manage.py run_referrals: what the referral tasks do, at once: read the order feed (qualify,
void, claw back), approve and reward ended holds, escalate overdue reviews. Safe to run any time,
alongside the beat tasks too (each step is idempotent and locks what it changes)."""

import sys

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from tqdm import tqdm

from referrals.services.qualification import referrals_feed_consume
from referrals.services.review import reviews_escalate
from referrals.services.rewards import holds_release


class Command(BaseCommand):
    help = "Read the order feed for referrals, reward referrals whose hold ended, escalate overdue reviews."

    def handle(self, *args, **options):
        # A bar on a terminal only (disable=None): the feed may hold a whole import's changes.
        with tqdm(unit=" changes", desc=_("order feed"), file=sys.stderr, disable=None) as bar:
            changes = referrals_feed_consume(progress=lambda done: bar.update(done - bar.n))
        released = holds_release()
        escalated = reviews_escalate()
        self.stdout.write(
            _("%(changes)d order changes read, %(released)d referrals rewarded, %(escalated)d reviews escalated.")
            % {"changes": changes, "released": released, "escalated": escalated}
        )
