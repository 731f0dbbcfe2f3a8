from django.urls import path

from core import views, views_jobs

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/<int:pk>/", views_jobs.job_detail, name="job-detail"),
    path("jobs/<int:pk>/progress/", views_jobs.job_progress, name="job-progress"),
]
