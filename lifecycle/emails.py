"""The retention e-mails lifecycle ships to the outbox (staff edit them in the admin site; the
outbox adds the one-click unsubscribe header, and the body links to {{ unsubscribe_url }}). The offer
e-mail gets each customer's own code or points at delivery (lifecycle.services.retention)."""

from messaging.context import register_message_context
from messaging.defaults import register_default_template

_UNSUBSCRIBE_EN = "\n\nNo more e-mails like this: {{ unsubscribe_url }}\n"
_UNSUBSCRIBE_ZH = "\n\n不想再收到此类邮件：{{ unsubscribe_url }}\n"


def register() -> None:
    from lifecycle.services.retention import OFFER_TEMPLATE, retention_offer_context

    register_message_context(template=OFFER_TEMPLATE, provider=retention_offer_context)
    register_default_template(
        key="retention_care",
        name="Retention: care e-mail with usage tips (churn risk 1)",
        purpose="marketing",
        variables="",
        subject_en="A few tips to get more out of your account",
        text_en=(
            "Hello {{ customer.first_name|default:'there' }},\n\n"
            "We noticed you have been around a little less lately. Here are three things customers like you enjoy most:\n"
            "- save what you like to your cart and come back to it any time;\n"
            "- see your order history and reorder in one click;\n"
            "- tell us what is missing: just reply to this e-mail.\n\n"
            "{{ site_url }}" + _UNSUBSCRIBE_EN
        ),
        subject_zh_hans="几个小技巧，让您的账户更好用",
        text_zh_hans=(
            "{{ customer.first_name|default:'您' }}好，\n\n"
            "我们注意到您最近来得少了一些。以下是像您这样的客户最喜欢的三项功能：\n"
            "- 把喜欢的商品加入购物车，随时回来查看；\n"
            "- 查看订单历史，一键再次购买；\n"
            "- 告诉我们还缺什么：直接回复此邮件即可。\n\n"
            "{{ site_url }}" + _UNSUBSCRIBE_ZH
        ),
    )
    register_default_template(
        key="retention_offer",
        name="Retention: time-limited offer (churn risk 3)",
        purpose="marketing",
        variables="offer_code, offer_expires_on, offer_days, offer_points",
        subject_en="We miss you: an offer just for you",
        text_en=(
            "Hello {{ customer.first_name|default:'there' }},\n\n"
            "It has been a while. "
            "{% if offer_points %}We have added {{ offer_points }} bonus points to your account: spend them on your next order."
            "{% else %}Use your own code {{ offer_code }} on your next order; it is valid until {{ offer_expires_on }}.{% endif %}\n\n"
            "{{ site_url }}" + _UNSUBSCRIBE_EN
        ),
        subject_zh_hans="好久不见：您的专属优惠",
        text_zh_hans=(
            "{{ customer.first_name|default:'您' }}好，\n\n"
            "好久不见。"
            "{% if offer_points %}我们已向您的账户赠送 {{ offer_points }} 积分，下次下单时即可使用。"
            "{% else %}下次下单时使用您的专属优惠码 {{ offer_code }}，有效期至 {{ offer_expires_on }}。{% endif %}\n\n"
            "{{ site_url }}" + _UNSUBSCRIBE_ZH
        ),
    )
