"""The portal's URLs under /portal/, and the pages other apps mount here (portal.registry)."""

from django.urls import include, path

from portal import views, views_account
from portal.registry import portal_urls

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("login/sent/", views.login_sent, name="login_sent"),
    path("link/<str:token>/", views.login_link, name="login_link"),
    path("logout/", views.logout, name="logout"),
    path("preferences/", views_account.preferences, name="preferences"),
    path("messages/", views_account.message_list, name="message_list"),
    path("messages/<int:message_pk>/", views_account.message_detail, name="message_detail"),
] + [path(mount.prefix, include(mount.urlconf)) for mount in portal_urls()]
