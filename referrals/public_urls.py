"""The public share-link page (/r/<code>/), outside the staff UI and the portal."""

from django.urls import path

from referrals import views_signup

app_name = "referrals-public"
urlpatterns = [path("<str:code>/", views_signup.referral_signup, name="signup")]
