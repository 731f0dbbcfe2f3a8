from django.urls import path, re_path

from feedback import views

app_name = "feedback"
urlpatterns = [
    path("", views.survey_list, name="list"),
    path("new/", views.survey_new, name="new"),
    path("import/", views.survey_import_upload, name="import"),
    path("<int:pk>/", views.survey_detail, name="detail"),
    path("<int:pk>/invite/", views.survey_invite_list, name="invite"),
    path("<int:pk>/export.json", views.survey_export_json, name="export-json"),
    path("<int:pk>/responses.csv", views.survey_export_csv, name="export-csv"),
    re_path(r"^(?P<pk>[0-9]{1,18})/(?P<action>open|close|duplicate)/$", views.survey_action, name="action"),
    path("responses/<int:pk>/", views.response_detail, name="response"),
]
