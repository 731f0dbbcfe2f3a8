from django.urls import path, register_converter
from rest_framework.routers import SimpleRouter

from core.ids import ID_REGEX
from customers import apis


class IdConverter:
    """A positive id that fits a BIGINT: larger numbers are a 404 from the router, not an overflow."""

    regex = ID_REGEX
    to_python = int
    to_url = str


register_converter(IdConverter, "id")

router = SimpleRouter()
router.register("customers", apis.CustomerViewSet, basename="api-customer")
router.register("orders", apis.OrderViewSet, basename="api-order")
router.register("events", apis.EventViewSet, basename="api-event")
router.register("channels", apis.ChannelViewSet, basename="api-channel")
router.register("channel-spend", apis.ChannelSpendViewSet, basename="api-channel-spend")

urlpatterns = [
    path("customers/<id:customer_id>/notes/", apis.CustomerNoteListApi.as_view(), name="api-customer-notes"),
    path("customers/<id:customer_id>/tasks/", apis.CustomerTaskListApi.as_view(), name="api-customer-tasks"),
    path("tasks/<id:pk>/complete/", apis.TaskCompleteApi.as_view(), name="api-task-complete"),
    *router.urls,
]
