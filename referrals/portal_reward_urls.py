"""/portal/rewards/: a referral reward's outcome page and its claim (the issue's
POST /portal/rewards/{id}/claim/)."""

from django.urls import path

from referrals import portal_views

app_name = "referral_rewards"

urlpatterns = [
    path("<int:reward_pk>/", portal_views.reward_detail, name="detail"),
    path("<int:reward_pk>/claim/", portal_views.reward_claim_view, name="claim"),
]
