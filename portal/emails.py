"""The e-mail the portal sends: its login link, shipped as an outbox template (English and Chinese)
that staff may edit in the admin site; the outbox creates it when missing, never overwriting edits.

Transactional: it goes to customers who declined marketing e-mail, not to hard-bounced addresses."""

from messaging.context import register_secret_context
from messaging.defaults import register_default_template

LOGIN_TEMPLATE = "portal_login"


def register() -> None:
    # The link signs the customer in: the outbox erases it from the message once sent.
    register_secret_context(template=LOGIN_TEMPLATE)
    register_default_template(
        key=LOGIN_TEMPLATE,
        name="Portal login link",
        purpose="transactional",
        variables="login_url, expires_minutes",
        subject_en="Your login link",
        text_en=(
            "Hello {{ customer.first_name|default:'there' }},\n\n"
            "Open this link to log in to your account. It works once and expires in {{ expires_minutes }} minutes:\n\n"
            "{{ login_url }}\n\n"
            "If you did not ask for it, ignore this e-mail: nobody can log in without the link.\n"
        ),
        html_en=(
            "<p>Hello {{ customer.first_name|default:'there' }},</p>\n"
            "<p>Open this link to log in to your account. It works once and expires in {{ expires_minutes }} minutes:</p>\n"
            '<p><a href="{{ login_url }}">Log in</a></p>\n'
            "<p>If you did not ask for it, ignore this e-mail: nobody can log in without the link.</p>\n"
        ),
        subject_zh_hans="您的登录链接",
        text_zh_hans=(
            "{{ customer.first_name|default:'您' }}好，\n\n"
            "请打开此链接登录您的账户。链接只能使用一次，{{ expires_minutes }} 分钟后失效：\n\n"
            "{{ login_url }}\n\n"
            "如果这不是您本人的请求，请忽略此邮件：没有此链接，任何人都无法登录。\n"
        ),
        html_zh_hans=(
            "<p>{{ customer.first_name|default:'您' }}好，</p>\n"
            "<p>请打开此链接登录您的账户。链接只能使用一次，{{ expires_minutes }} 分钟后失效：</p>\n"
            '<p><a href="{{ login_url }}">登录</a></p>\n'
            "<p>如果这不是您本人的请求，请忽略此邮件：没有此链接，任何人都无法登录。</p>\n"
        ),
    )
