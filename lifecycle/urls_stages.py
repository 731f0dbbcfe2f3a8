"""URLs of the stage screens, included by lifecycle/urls.py under the lifecycle namespace."""

from django.urls import path

from lifecycle import views_stages

urlpatterns = [
    path("stages/", views_stages.stages_dashboard, name="stages"),
    path("stages/customers/", views_stages.stage_customers, name="stage_customers"),
    path("stages/evaluate/", views_stages.stages_evaluate, name="stages_evaluate"),
    path("stages/customer/<int:pk>/stage/", views_stages.customer_stage_change, name="customer_stage_change"),
    path("tasks/", views_stages.tasks_inbox, name="tasks"),
    path("tasks/<int:pk>/done/", views_stages.task_done, name="task_done"),
]
