from django.urls import path

from lifecycle import views

app_name = "lifecycle"

urlpatterns = [
    path("", views.value_dashboard, name="dashboard"),
    path("runs/", views.value_runs, name="runs"),
    path("runs/recompute/", views.value_recompute, name="recompute"),
]
