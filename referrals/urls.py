from django.urls import path

from referrals import views

app_name = "referrals"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("list/", views.referral_list, name="list"),
    path("<int:pk>/", views.referral_detail, name="detail"),
    path("review/", views.review_queue, name="review"),
    path("review/<int:pk>/decide/", views.review_decide, name="review_decide"),
    path("payouts/", views.payout_list, name="payouts"),
    path("payouts/<int:pk>/paid/", views.payout_paid, name="payout_paid"),
]
