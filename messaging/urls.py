from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/resume/", views.resume, name="resume"),
    path("email/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("email/resubscribe/<str:token>/", views.resubscribe, name="resubscribe"),
]
