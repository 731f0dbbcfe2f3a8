from django.urls import path

from feedback import views_public

app_name = "feedback-public"
urlpatterns = [path("<str:token>/", views_public.survey_answer, name="answer")]
