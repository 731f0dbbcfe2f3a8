from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script as a file: the CSP allows no inline script.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="core/swagger_ui.html"),
        name="api-docs",
    ),
    path("api/v1/", include("core.api_urls")),
    path("api/v1/", include("customers.api_urls")),
    path("api/v1/", include("lifecycle.api_urls")),
    path("api/v1/", include("loyalty.api_urls")),
    path("api/v1/", include("feedback.api_urls")),
    path("api/v1/", include("messaging.api_urls")),
    # Intake first: its "referrals/" view lists (refcore's ReferralListApi) and creates (POST).
    path("api/v1/", include("referrals.api_urls_intake")),
    path("api/v1/", include("referrals.api_urls")),
    path("", include("core.urls")),
    path("customers/", include("customers.urls")),
    path("value/", include("lifecycle.urls")),
    path("loyalty/", include("loyalty.urls")),
    path("referrals/", include("referrals.urls")),
    path("portal/", include("portal.urls")),
    path("surveys/", include("feedback.urls")),
    path("s/", include("feedback.public_urls")),
    path("r/", include("referrals.public_urls")),
    path("", include("messaging.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
