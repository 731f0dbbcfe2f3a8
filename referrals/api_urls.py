from django.urls import path

from referrals import apis

urlpatterns = [
    path("referrals/", apis.ReferralListApi.as_view(), name="api-referrals"),
    path("referrals/<id:referral_id>/", apis.ReferralDetailApi.as_view(), name="api-referral"),
    path("referrals/<id:referral_id>/approve/", apis.ReferralApproveApi.as_view(), name="api-referral-approve"),
    path("referrals/<id:referral_id>/reject/", apis.ReferralRejectApi.as_view(), name="api-referral-reject"),
    path("referral-rewards/", apis.RewardListApi.as_view(), name="api-referral-rewards"),
    path("referral-rewards/<id:reward_id>/", apis.RewardDetailApi.as_view(), name="api-referral-reward"),
]
