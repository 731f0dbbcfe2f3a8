from django.urls import path

from loyalty import apis

urlpatterns = [
    path("loyalty/accounts/<id:customer_id>/", apis.AccountApi.as_view(), name="api-loyalty-account"),
    path(
        "loyalty/accounts/<id:customer_id>/transactions/",
        apis.TransactionListApi.as_view(),
        name="api-loyalty-transactions",
    ),
    path("loyalty/accounts/<id:customer_id>/adjust/", apis.AdjustApi.as_view(), name="api-loyalty-adjust"),
    path("loyalty/accounts/<id:customer_id>/redeem/", apis.RedeemApi.as_view(), name="api-loyalty-redeem"),
]
