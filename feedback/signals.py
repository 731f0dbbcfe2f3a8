"""Signals other apps listen to, sent after the transaction commits.

`response_submitted(response, category)`: a customer submitted a survey response; `category` is
"promoter", "passive", "detractor" or None (no NPS question). The lifecycle app feeds its health
score and loyal stage from it; the referral programme invites promoters."""

from django.dispatch import Signal

response_submitted = Signal()
