"""The customer portal's one table: the single-use login links it mails to customers.

Only the SHA-256 of a link's token is stored, so a copy of the database cannot log anyone in;
`used_at` is set by one conditional UPDATE (portal.services.login_token_spend), which is what makes
a link single use even when two requests spend it at the same moment."""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class LoginToken(models.Model):
    token_hash = models.CharField(_("token hash"), max_length=64, help_text=_("SHA-256 of the token, hex."))
    # The login request this token answers: a task that runs twice finds it and sends nothing more.
    request_id = models.UUIDField(_("request id"))
    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="login_tokens"
    )
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("portal login link")
        verbose_name_plural = _("portal login links")
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], name="portal_login_token_hash_uniq"),
            models.UniqueConstraint(fields=["request_id"], name="portal_login_token_request_uniq"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("created_at")), name="portal_login_token_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} ({self.created_at:%Y-%m-%d %H:%M})"
