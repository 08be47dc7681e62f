"""The REST API under /api/: resources under v1/, the OpenAPI schema and its interactive docs."""

from django.templatetags.static import static
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from cockpit.api import ValueChangeView, WorklistView
from customers.api import CustomerViewSet, SurveyAnswerViewSet, TransactionViewSet
from services.api import ServiceEventViewSet, ServiceTypeViewSet, StandardCostViewSet
from valuation.api import CustomerValueHistoryViewSet, LatestValueViewSet, SegmentSummaryView, ValuationRunViewSet


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI from our own static files (static/swagger-ui/), no CDN; the init script is
    served separately so it also runs under a strict Content-Security-Policy."""

    @staticmethod
    def _swagger_ui_resource(filename):
        return static(f"swagger-ui/{filename}")

    @staticmethod
    def _swagger_ui_favicon():
        return static("swagger-ui/favicon-32x32.png")


router = DefaultRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register(r"customers/(?P<customer_pk>[^/]+)/values", CustomerValueHistoryViewSet, basename="customer-values")
router.register("transactions", TransactionViewSet, basename="transaction")
router.register("survey-answers", SurveyAnswerViewSet, basename="survey-answer")
router.register("service-types", ServiceTypeViewSet, basename="service-type")
router.register("standard-costs", StandardCostViewSet, basename="standard-cost")
router.register("service-events", ServiceEventViewSet, basename="service-event")
router.register("values", LatestValueViewSet, basename="value")
router.register("valuation-runs", ValuationRunViewSet, basename="valuation-run")

app_name = "api"

urlpatterns = [
    path("v1/segments/", SegmentSummaryView.as_view(), name="segments"),
    path("v1/worklist/", WorklistView.as_view(), name="worklist"),
    re_path(r"^v1/customers/(?P<customer_id>[^/]+)/value-change/$", ValueChangeView.as_view(), name="value-change"),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
]
