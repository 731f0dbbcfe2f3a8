"""A portal page as another app would mount it (portal.registry.register_portal_urls), for the test
that the access matrix walks mounted pages too. Its view shows a message by id, through the helper."""

from django.http import HttpResponse
from django.urls import path

from portal.access import customer_object_or_404, customer_required
from portal.selectors import sent_messages

app_name = "mounted"


@customer_required
def mounted_message(request, message_pk):
    message = customer_object_or_404(request, sent_messages(), pk=message_pk)
    return HttpResponse(str(message.pk))


urlpatterns = [path("messages/<int:message_pk>/", mounted_message, name="mounted_message")]
