from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords


class ServiceType(models.Model):
    class Unit(models.TextChoices):
        OCCURRENCE = "occurrence", _("occurrence")
        HOUR = "hour", _("hour")
        DAY = "day", _("day")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name (English)"), max_length=100)
    name_de = models.CharField(_("name (German)"), max_length=100, blank=True)
    description = models.TextField(_("description"), blank=True)
    unit = models.CharField(_("unit"), max_length=12, choices=Unit.choices, default=Unit.OCCURRENCE)
    active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("service type")
        verbose_name_plural = _("service types")
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """The name in the reader's language (English where no German name is given)."""
        return localized_name(self.name, self.name_de)


def localized_name(name: str, name_de: str) -> str:
    """Pick the service type name for the active language: for rows read with values()."""
    language = (get_language() or "en").split("-")[0]
    return name_de if language == "de" and name_de else name


class StandardCost(models.Model):
    """Cost per unit of a service type, valid from a date until the next entry.

    A history, never edited in place: a new cost gets a new row, so services given
    before the change keep the cost valid on their day.
    """

    service_type = models.ForeignKey(
        ServiceType, verbose_name=_("service type"), on_delete=models.CASCADE, related_name="standard_costs"
    )
    valid_from = models.DateField(_("valid from"))
    cost_per_unit = models.DecimalField(_("cost per unit"), max_digits=12, decimal_places=2)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("standard cost")
        verbose_name_plural = _("standard costs")
        ordering = ["service_type", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["service_type", "valid_from"],
                name="standard_cost_one_per_day",
                violation_error_message=_("This service type already has a standard cost valid from that date."),
            ),
            models.CheckConstraint(
                condition=Q(cost_per_unit__gte=0),
                name="standard_cost_not_negative",
                violation_error_message=_("A standard cost cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_type}: {self.cost_per_unit} / {self.service_type.get_unit_display()} ({self.valid_from})"


class ServiceEvent(models.Model):
    """One free service given to one customer."""

    # Indexed through (customer, date) below.
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="service_events",
        db_index=False,
    )
    service_type = models.ForeignKey(
        ServiceType, verbose_name=_("service type"), on_delete=models.PROTECT, related_name="events"
    )
    date = models.DateField(_("date"))
    quantity = models.DecimalField(
        _("quantity"), max_digits=8, decimal_places=2, default=1, help_text=_("Occurrences, hours or days.")
    )
    note = models.TextField(_("background"), blank=True)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("logged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="logged_service_events",
    )
    # Id in a feeding system (ticketing, phone): re-imports update instead of duplicating.
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)
    # Who changed what, when, before and after (bulk imports are audited by their run record).
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("service event")
        verbose_name_plural = _("service events")
        ordering = ["-date", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="service_event_quantity_positive",
                violation_error_message=_("The quantity must be positive."),
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                name="service_event_external_id_unique",
                violation_error_message=_("A service event with this external id already exists."),
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "date"], name="svc_event_customer_date_idx"),
            models.Index(fields=["date"], name="service_event_date_idx"),
            # The id breaks ties as the log page orders: an import gives thousands of events
            # one created_at, and sorting such a tie group took ~0.2 s per page view.
            models.Index(fields=["logged_by", "-created_at", "-id"], name="svc_event_logger_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.service_type} for {self.customer_id} on {self.date}"
