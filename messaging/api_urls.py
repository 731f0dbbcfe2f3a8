from rest_framework.routers import SimpleRouter

from messaging import apis

router = SimpleRouter()
router.register("suppressions", apis.SuppressionViewSet, basename="api-suppression")

urlpatterns = router.urls
