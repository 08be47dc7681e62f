from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared pieces that import no app of ours: API base, money formatting, COPY text, limits."""

    name = "core"
