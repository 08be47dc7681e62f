from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on every response: scripts only from our static files.

    Charts work under it because figures travel as JSON (json_script) and are drawn by static
    JS with plotly's strict bundle, which needs no eval.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(f"{k} {v}" for k, v in settings.CONTENT_SECURITY_POLICY.items())

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
