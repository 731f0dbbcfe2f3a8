from django.urls import path

from lifecycle import apis

urlpatterns = [
    path("customers/<int:customer_id>/value/", apis.CustomerValueApi.as_view(), name="api-customer-value"),
    path("clv/model/", apis.ClvModelApi.as_view(), name="api-clv-model"),
    path("clv/channels/", apis.ClvChannelsApi.as_view(), name="api-clv-channels"),
]
