from django.urls import path

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
    *(
        path(f"<int:pk>/{action}/", views.survey_action, {"action": action}, name=f"{action}")
        for action in ("open", "close", "duplicate")
    ),
    path("responses/<int:pk>/", views.response_detail, name="response"),
]
