"""The survey e-mails as outbox templates (en + zh-hans), shipped through messaging.defaults: the
outbox creates them for staff to edit, and again on first use if the row is missing; staff edits are
never overwritten."""

from messaging.defaults import register_default_template

COMMON = {"purpose": "marketing", "variables": "survey_name, survey_url, expires_on"}

INVITATION = {
    **COMMON,
    "key": "survey_invitation",
    "name": "Survey invitation",
    "subject_en": "{{ survey_name }}: a minute of your time?",
    "text_en": (
        "Hello {{ customer.first_name|default:'there' }},\n\n"
        "We would like to hear what you think. Answering takes about a minute:\n\n"
        "{{ survey_url }}\n\n"
        "The link is yours alone and works until {{ expires_on }}.\n\n"
        "Unsubscribe: {{ unsubscribe_url }}\n"
    ),
    "html_en": (
        "<p>Hello {{ customer.first_name|default:'there' }},</p>\n"
        "<p>We would like to hear what you think. Answering takes about a minute:</p>\n"
        '<p><a href="{{ survey_url }}">{{ survey_name }}</a></p>\n'
        "<p>The link is yours alone and works until {{ expires_on }}.</p>\n"
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n'
    ),
    "subject_zh_hans": "{{ survey_name }}：能占用您一分钟吗？",
    "text_zh_hans": (
        "{{ customer.first_name|default:'您' }}好，\n\n"
        "我们很想听听您的看法，回答大约只需一分钟：\n\n"
        "{{ survey_url }}\n\n"
        "此链接仅供您本人使用，有效期至 {{ expires_on }}。\n\n"
        "退订：{{ unsubscribe_url }}\n"
    ),
    "html_zh_hans": (
        "<p>{{ customer.first_name|default:'您' }}好，</p>\n"
        "<p>我们很想听听您的看法，回答大约只需一分钟：</p>\n"
        '<p><a href="{{ survey_url }}">{{ survey_name }}</a></p>\n'
        "<p>此链接仅供您本人使用，有效期至 {{ expires_on }}。</p>\n"
        '<p><a href="{{ unsubscribe_url }}">退订</a></p>\n'
    ),
}

REMINDER = {
    **COMMON,
    "key": "survey_reminder",
    "name": "Survey reminder",
    "subject_en": "Reminder: {{ survey_name }}",
    "text_en": (
        "Hello {{ customer.first_name|default:'there' }},\n\n"
        "A short reminder: your answers to our survey are still welcome until {{ expires_on }}:\n\n"
        "{{ survey_url }}\n\n"
        "Unsubscribe: {{ unsubscribe_url }}\n"
    ),
    "html_en": (
        "<p>Hello {{ customer.first_name|default:'there' }},</p>\n"
        "<p>A short reminder: your answers to our survey are still welcome until {{ expires_on }}:</p>\n"
        '<p><a href="{{ survey_url }}">{{ survey_name }}</a></p>\n'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n'
    ),
    "subject_zh_hans": "提醒：{{ survey_name }}",
    "text_zh_hans": (
        "{{ customer.first_name|default:'您' }}好，\n\n"
        "温馨提醒：在 {{ expires_on }} 之前，我们仍期待您的回答：\n\n"
        "{{ survey_url }}\n\n"
        "退订：{{ unsubscribe_url }}\n"
    ),
    "html_zh_hans": (
        "<p>{{ customer.first_name|default:'您' }}好，</p>\n"
        "<p>温馨提醒：在 {{ expires_on }} 之前，我们仍期待您的回答：</p>\n"
        '<p><a href="{{ survey_url }}">{{ survey_name }}</a></p>\n'
        '<p><a href="{{ unsubscribe_url }}">退订</a></p>\n'
    ),
}


def register_survey_templates() -> None:
    for spec in (INVITATION, REMINDER):
        register_default_template(**spec)
