from django.urls import path

from loyalty import views

app_name = "loyalty"

urlpatterns = [
    path("", views.programme_dashboard, name="dashboard"),
    path("customers/<int:pk>/ledger/", views.customer_ledger, name="customer_ledger"),
    path("customers/<int:pk>/adjust/", views.customer_adjust, name="customer_adjust"),
    path("customers/<int:pk>/tier/", views.customer_tier_hold, name="customer_tier_hold"),
]
