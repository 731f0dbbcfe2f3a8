from django.urls import path

from customers import views, views_import

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("export.csv", views.customer_export, name="export"),
    path("new/", views.customer_create_page, name="create"),
    path("import/", views_import.import_page, name="import"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/", views.customer_edit, name="edit"),
    path("<int:pk>/orders/new/", views.order_create_page, name="order_create"),
    path("<int:pk>/notes/", views.customer_note_create, name="note_create"),
    path("<int:pk>/tasks/", views.customer_task_create, name="task_create"),
    path("<int:pk>/tasks/<int:task_pk>/complete/", views.customer_task_complete, name="task_complete"),
]
