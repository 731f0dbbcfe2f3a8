"""What the referrals app hooks into other apps, connected from AppConfig.ready(): the customers
import's `referral_code` column, and portal logins (the referrer's IP, user agent and device, for
the "same device as the referrer" check)."""

from __future__ import annotations

from django.dispatch import receiver

from core.client_ip import client_ip
from customers.import_hooks import customer_import_hook_register
from portal.signals import portal_logged_in
from referrals.services.fraud import Traits
from referrals.services.import_column import REFERRAL_CODE_IMPORT_HOOK
from referrals.services.intake import fingerprints_record

customer_import_hook_register(REFERRAL_CODE_IMPORT_HOOK)


@receiver(portal_logged_in, dispatch_uid="referrals_fingerprint_portal_login")
def fingerprint_portal_login(sender, *, request, customer, **kwargs) -> None:
    from referrals.views_signup import DEVICE_COOKIE

    traits = Traits.of(
        ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""),
        device_id=request.COOKIES.get(DEVICE_COOKIE, ""),
    )
    fingerprints_record(customer_id=customer.pk, traits=traits)
