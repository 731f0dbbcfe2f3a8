from django.urls import path

from lifecycle import views
from lifecycle.urls_stages import urlpatterns as stage_urlpatterns

app_name = "lifecycle"

urlpatterns = [
    path("", views.value_dashboard, name="dashboard"),
    path("runs/", views.value_runs, name="runs"),
    path("runs/recompute/", views.value_recompute, name="recompute"),
]

urlpatterns += stage_urlpatterns
