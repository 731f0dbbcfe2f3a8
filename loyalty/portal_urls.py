from django.urls import path

from loyalty import portal_views

app_name = "loyalty"

urlpatterns = [
    path("", portal_views.points, name="points"),
    path("rewards/", portal_views.rewards, name="rewards"),
    path("rewards/redeem/", portal_views.reward_redeem_view, name="reward_redeem"),
]
