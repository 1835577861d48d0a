"""GET metrics/ in the bundled URLconf, for a Prometheus scraper.

Importable without the ``metrics`` extra, so that the URLconf always loads:
the endpoint then answers a JSON 501 saying how to enable it.
"""

import logging

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

from ..params import Params
from ..views import TaskEndpointView, error
from . import EXTRA_MISSING, OPTION, enabled, installed

logger = logging.getLogger(__name__)


class MetricsView(TaskEndpointView):
    """GET metrics/: the metrics of the named backend (``backend_name``,
    default ``default``), whose AUTH_HANDLERS decide who may read them."""

    endpoint = "metrics"
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse | JsonResponse:
        params = Params.parse(request, from_body=False).only("backend_name")
        backend = params.backend()
        if not installed():
            return error(EXTRA_MISSING, 501)
        if not enabled(backend):
            return error(
                f"Metrics are off for task backend {backend.alias!r}: set "
                f"OPTIONS['{OPTION}'] = True in TASKS[{backend.alias!r}].",
                404,
            )
        from .exposition import render

        try:
            body, content_type = render(backend)
        except ImproperlyConfigured as e:
            logger.error("Task metrics cannot be served: %s", e)
            return error(str(e), 500)
        return HttpResponse(body, content_type=content_type)
