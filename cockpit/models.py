from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SavedCustomerFilter(models.Model):
    """A named customer-list search of one user: its filters and sort, as a query string."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_customer_filters")
    name = models.CharField(_("name"), max_length=60)
    query = models.CharField(_("filters"), max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("saved customer filter")
        verbose_name_plural = _("saved customer filters")
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_filter_unique_name_per_user")]

    def __str__(self) -> str:
        return self.name
