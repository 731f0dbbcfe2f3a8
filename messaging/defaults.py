"""Templates apps ship: created in the database by messaging's data migration (for staff to edit in
the admin site), and again on first use if the row is missing (a fresh test database, a flush).

An app adds its own with `register_default_template(key=..., name=..., purpose=..., variables=...,
subject_en=..., text_en=..., ...)` from its AppConfig.ready(); staff edits are never overwritten."""

from __future__ import annotations

DEFAULT_TEMPLATES: dict[str, dict] = {}


def register_default_template(**fields) -> None:
    DEFAULT_TEMPLATES[fields["key"]] = fields


# The portal's sign-in link (transactional: it ignores marketing consent, not bounces or complaints).
register_default_template(
    key="portal_login", name="Portal login link", purpose="transactional", variables="login_url, expires_minutes", subject_en="Your sign-in link", text_en=(
            "Hello {{ customer.first_name|default:'there' }},\n\n"
            "Open this link to sign in to your account. It works once and expires in {{ expires_minutes }} minutes:\n\n"
            "{{ login_url }}\n\n"
            "If you did not ask for it, ignore this e-mail: nobody can sign in without the link.\n"
        ), html_en=(
            "<p>Hello {{ customer.first_name|default:'there' }},</p>\n"
            "<p>Open this link to sign in to your account. It works once and expires in {{ expires_minutes }} minutes:</p>\n"
            '<p><a href="{{ login_url }}">Sign in</a></p>\n'
            "<p>If you did not ask for it, ignore this e-mail: nobody can sign in without the link.</p>\n"
        ), subject_zh_hans="您的登录链接", text_zh_hans=(
            "{{ customer.first_name|default:'您' }}好，\n\n"
            "请打开此链接登录您的账户。链接只能使用一次，{{ expires_minutes }} 分钟后失效：\n\n"
            "{{ login_url }}\n\n"
            "如果这不是您本人的请求，请忽略此邮件：没有此链接，任何人都无法登录。\n"
        ), html_zh_hans=(
            "<p>{{ customer.first_name|default:'您' }}好，</p>\n"
            "<p>请打开此链接登录您的账户。链接只能使用一次，{{ expires_minutes }} 分钟后失效：</p>\n"
            '<p><a href="{{ login_url }}">登录</a></p>\n'
            "<p>如果这不是您本人的请求，请忽略此邮件：没有此链接，任何人都无法登录。</p>\n"
        )
)
