"""The programme's settings row."""

from referrals.models import ReferralProgram


def program_get() -> ReferralProgram:
    """The settings row, created with the defaults on first use."""
    program, _created = ReferralProgram.objects.get_or_create(pk=1)
    return program
