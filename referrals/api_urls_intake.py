"""API routes of the referral intake (apis_intake.py), included under /api/v1/ next to the rest of
the referrals API."""

from django.urls import path

from referrals import apis_intake

urlpatterns = [
    path("customers/<id:customer_id>/referral-code/", apis_intake.CustomerReferralCodeApi.as_view(),
         name="api-customer-referral-code"),
    # Before referrals.api_urls in config/urls.py: this view also serves its GET list.
    path("referrals/", apis_intake.ReferralListCreateApi.as_view(), name="api-referral-create"),
]
