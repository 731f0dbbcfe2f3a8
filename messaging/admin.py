"""The outbox in the admin site: templates (with a preview and a test send), the suppression list,
and the messages themselves (read-only: they change only through the outbox's services)."""

from django.conf import settings
from django.contrib import admin, messages
from django.core.mail import EmailMultiAlternatives
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from messaging.models import TEMPLATE_LANGUAGES, Message, MessageTemplate, Suppression
from messaging.rendering import SAMPLE_CUSTOMER, render_parts, template_errors


def _sample_context(template: MessageTemplate) -> dict[str, str]:
    return {name: f"[{name}]" for name in template.variable_names}


def _render_sample(template: MessageTemplate, language: str) -> tuple[str, str, str]:
    return render_parts(
        template,
        language=language,
        customer=SAMPLE_CUSTOMER,
        context=_sample_context(template),
        unsubscribe_url=f"{settings.SITE_URL}/email/unsubscribe/sample/",
    )


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "purpose", "updated_at")
    list_filter = ("purpose",)
    search_fields = ("key", "name", "subject_en", "subject_zh_hans")
    actions = ["send_test"]
    readonly_fields = ("placeholders", "preview", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("key", "name", "purpose", "variables", "placeholders")}),
        (_("English"), {"fields": ("subject_en", "text_en", "html_en")}),
        (_("Chinese"), {"fields": ("subject_zh_hans", "text_zh_hans", "html_zh_hans")}),
        (_("Preview with a sample customer"), {"fields": ("preview",)}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # Apps that ship a template fill in what they provide; staff edit the wording, not the contract.
        return (*self.readonly_fields, "key", "variables") if obj else self.readonly_fields

    @admin.display(description=_("Placeholders"))
    def placeholders(self, obj):
        names = ["customer.first_name", "customer.last_name", "customer.full_name", "customer.email", "site_url"]
        if obj and obj.purpose == "marketing":
            names.append("unsubscribe_url")
        names += obj.variable_names if obj else []
        return format_html_join(", ", "<code>{{{{ {} }}}}</code>", ((name,) for name in names))

    @admin.display(description=_("Preview"))
    def preview(self, obj):
        if not obj or not obj.pk or template_errors(obj):
            return _("Save the template to see a preview.")
        parts = []
        for language, _suffix in TEMPLATE_LANGUAGES:
            subject, text, html = _render_sample(obj, language)
            parts.append(
                format_html(
                    '<div class="template-preview"><h4>{}</h4><p><strong>{}</strong></p><pre>{}</pre>{}</div>',
                    dict(settings.LANGUAGES)[language],
                    subject,
                    text,
                    # The HTML body in a sandboxed frame: its markup cannot touch the admin page.
                    format_html(
                        '<iframe sandbox="" srcdoc="{}" style="width:100%;height:16em;border:1px solid #ccc"></iframe>',
                        html,
                    )
                    if html
                    else "",
                )
            )
        return format_html_join("", "{}", ((part,) for part in parts))

    @admin.action(description=_("Send a test e-mail to me (both languages, sample customer)"))
    def send_test(self, request, queryset):
        if not request.user.email:
            self.message_user(request, _("Your user has no e-mail address."), messages.ERROR)
            return
        sent = 0
        for template in queryset:
            for language, _suffix in TEMPLATE_LANGUAGES:
                subject, text, html = _render_sample(template, language)
                email = EmailMultiAlternatives(
                    f"[TEST] {subject}", text, settings.DEFAULT_FROM_EMAIL, [request.user.email]
                )
                if html:
                    email.attach_alternative(html, "text/html")
                email.send()
                sent += 1
        self.message_user(
            request, _("%(count)s test e-mails sent to %(address)s.") % {"count": sent, "address": request.user.email}
        )


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("address", "reason", "note", "created_at")
    list_filter = ("reason",)
    search_fields = ("address",)
    readonly_fields = ("created_at",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "key", "customer", "template", "purpose", "state", "attempts", "created_at", "sent_at")
    list_filter = ("state", "purpose", "template")
    search_fields = ("key", "to_email")
    list_select_related = ("customer", "template")
    raw_id_fields = ("customer",)
    show_full_result_count = False  # the outbox grows large; COUNT(*) on every page is slow

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
