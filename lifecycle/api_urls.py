from django.urls import path

from lifecycle import apis, apis_stages

urlpatterns = [
    path("customers/<int:customer_id>/value/", apis.CustomerValueApi.as_view(), name="api-customer-value"),
    path("clv/model/", apis.ClvModelApi.as_view(), name="api-clv-model"),
    path("clv/channels/", apis.ClvChannelsApi.as_view(), name="api-clv-channels"),
    path("customers/<int:customer_id>/transitions/", apis_stages.CustomerTransitionListApi.as_view(), name="api-customer-transitions"),
    path("customers/<int:customer_id>/stage/", apis_stages.CustomerStageApi.as_view(), name="api-customer-stage"),
    path("tasks/", apis_stages.TaskInboxListApi.as_view(), name="api-tasks"),
    path("tasks/<int:pk>/", apis_stages.TaskInboxUpdateApi.as_view(), name="api-task"),
]
