from django.urls import path

from referrals import portal_views

app_name = "referrals"

urlpatterns = [
    path("", portal_views.overview, name="overview"),
]
