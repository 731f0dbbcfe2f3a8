from django.urls import path
from rest_framework.routers import SimpleRouter

from customers import apis

router = SimpleRouter()
router.register("customers", apis.CustomerViewSet, basename="api-customer")
router.register("orders", apis.OrderViewSet, basename="api-order")
router.register("events", apis.EventViewSet, basename="api-event")
router.register("channels", apis.ChannelViewSet, basename="api-channel")
router.register("channel-spend", apis.ChannelSpendViewSet, basename="api-channel-spend")

urlpatterns = [
    path("customers/<int:customer_id>/notes/", apis.CustomerNoteListApi.as_view(), name="api-customer-notes"),
    path("customers/<int:customer_id>/tasks/", apis.CustomerTaskListApi.as_view(), name="api-customer-tasks"),
    path("tasks/<int:pk>/complete/", apis.TaskCompleteApi.as_view(), name="api-task-complete"),
    *router.urls,
]
