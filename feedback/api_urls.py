from django.urls import path

from feedback import apis

urlpatterns = [
    path("surveys/", apis.SurveyListApi.as_view(), name="api-surveys"),
    path("surveys/responses/", apis.SurveyResponseApi.as_view(), name="api-survey-responses"),
    path("surveys/<id:pk>/invitations/", apis.SurveyInvitationApi.as_view(), name="api-survey-invitations"),
    path("surveys/<id:pk>/results/", apis.SurveyResultsApi.as_view(), name="api-survey-results"),
]
