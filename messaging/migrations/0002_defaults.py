"""Ship what the outbox needs from the start: the one-row pause switch, the portal's login-link
template (en + zh-hans; staff may edit it, later migrations never overwrite it), and beat's
every-minute delivery run (django-celery-beat, editable under Periodic tasks)."""

from django.db import migrations

DELIVERY_TASK_NAME = "Outbox delivery"

PORTAL_LOGIN = {
    "key": "portal_login",
    "name": "Portal login link",
    "purpose": "transactional",
    "variables": "login_url, expires_minutes",
    "subject_en": "Your sign-in link",
    "text_en": (
        "Hello {{ customer.first_name|default:'there' }},\n\n"
        "Open this link to sign in to your account. It works once and expires in {{ expires_minutes }} minutes:\n\n"
        "{{ login_url }}\n\n"
        "If you did not ask for it, ignore this e-mail: nobody can sign in without the link.\n"
    ),
    "html_en": (
        "<p>Hello {{ customer.first_name|default:'there' }},</p>\n"
        "<p>Open this link to sign in to your account. It works once and expires in {{ expires_minutes }} minutes:</p>\n"
        '<p><a href="{{ login_url }}">Sign in</a></p>\n'
        "<p>If you did not ask for it, ignore this e-mail: nobody can sign in without the link.</p>\n"
    ),
    "subject_zh_hans": "您的登录链接",
    "text_zh_hans": (
        "{{ customer.first_name|default:'您' }}好，\n\n"
        "请打开此链接登录您的账户。链接只能使用一次，{{ expires_minutes }} 分钟后失效：\n\n"
        "{{ login_url }}\n\n"
        "如果这不是您本人的请求，请忽略此邮件：没有此链接，任何人都无法登录。\n"
    ),
    "html_zh_hans": (
        "<p>{{ customer.first_name|default:'您' }}好，</p>\n"
        "<p>请打开此链接登录您的账户。链接只能使用一次，{{ expires_minutes }} 分钟后失效：</p>\n"
        '<p><a href="{{ login_url }}">登录</a></p>\n'
        "<p>如果这不是您本人的请求，请忽略此邮件：没有此链接，任何人都无法登录。</p>\n"
    ),
}


def create_defaults(apps, schema_editor):
    from messaging.services.sending import message_template_ensure

    apps.get_model("messaging", "OutboxState").objects.get_or_create(pk=1)
    message_template_ensure(**PORTAL_LOGIN, model=apps.get_model("messaging", "MessageTemplate"))
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=DELIVERY_TASK_NAME,
        defaults={"task": "messaging.tasks.messages_deliver", "interval": every_minute, "enabled": True},
    )


def remove_defaults(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=DELIVERY_TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
