from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Cast, Round
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 14, "decimal_places": 2}


class Customer(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        LOST = "lost", _("lost")

    class Channel(models.TextChoices):
        DIRECT_SALES = "direct_sales", _("direct sales")
        REFERRAL = "referral", _("referral")
        TRADE_FAIR = "trade_fair", _("trade fair")
        ONLINE = "online", _("online")
        PARTNER = "partner", _("partner")
        OTHER = "other", _("other")

    number = models.CharField(_("customer number"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200, db_index=True)
    industry = models.CharField(_("industry"), max_length=100, blank=True, db_index=True)
    region = models.CharField(_("region"), max_length=100, blank=True, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        help_text=_("The responsible sales rep."),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
    )
    acquired_on = models.DateField(_("acquired on"), null=True, blank=True)
    acquisition_channel = models.CharField(
        _("acquisition channel"), max_length=20, choices=Channel.choices, default=Channel.DIRECT_SALES
    )
    referred_by = models.ForeignKey(
        "self",
        verbose_name=_("referred by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    lost_on = models.DateField(_("lost on"), null=True, blank=True)
    yearly_wallet = models.DecimalField(
        _("estimated yearly wallet"),
        help_text=_("What the customer spends per year on what we sell, with us and with competitors."),
        null=True,
        blank=True,
        **MONEY,
    )
    # Marks rows made by `seed_demo`, so it never wipes or mixes with real data.
    is_demo = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="active", lost_on__isnull=True) | Q(status="lost", lost_on__isnull=False),
                name="customer_lost_on_matches_status",
                violation_error_message=_("A lost customer needs the date it was lost; an active one has none."),
            ),
            models.CheckConstraint(
                condition=Q(yearly_wallet__isnull=True) | Q(yearly_wallet__gte=0),
                name="customer_wallet_not_negative",
                violation_error_message=_("The yearly wallet cannot be negative."),
            ),
            models.CheckConstraint(
                condition=~Q(referred_by=models.F("pk")),
                name="customer_not_referred_by_itself",
                violation_error_message=_("A customer cannot refer itself."),
            ),
        ]
        indexes = [models.Index(fields=["owner", "name"], name="customer_owner_name_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"


class Transaction(models.Model):
    # No index of its own: (customer, date) below serves every customer lookup. Fewer indexes
    # on the largest table make bulk loads several times faster.
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="transactions", db_index=False
    )
    # The source system's id: re-imports update instead of duplicating.
    external_id = models.CharField(_("external id"), max_length=64)
    date = models.DateField(_("date"))
    revenue = models.DecimalField(_("revenue"), **MONEY)
    cost_of_goods = models.DecimalField(_("cost of goods"), default=0, **MONEY)
    product = models.CharField(_("product or category"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=50, blank=True)
    # The amounts in whole cents, kept by the database: the nightly sums read these, since
    # PostgreSQL converts a numeric to a float through its text (about 1 µs a value, some 9
    # CPU-seconds a night at 20M rows) and adds integers several times faster than numerics.
    revenue_cents = models.GeneratedField(
        expression=Cast(Round(F("revenue") * 100), models.BigIntegerField()),
        output_field=models.BigIntegerField(), db_persist=True,
    )
    cost_of_goods_cents = models.GeneratedField(
        expression=Cast(Round(F("cost_of_goods") * 100), models.BigIntegerField()),
        output_field=models.BigIntegerField(), db_persist=True,
    )

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        ordering = ["-date", "-id"]
        constraints = [
            # A constraint rather than unique=True: PostgreSQL then skips the LIKE index.
            models.UniqueConstraint(
                fields=["external_id"],
                name="transaction_external_id_unique",
                violation_error_message=_("A transaction with this external id already exists."),
            ),
        ]
        indexes = [
            # The nightly one pass and the cross-sell sums read every transaction in (customer,
            # date) order and need only these columns: they read the index alone, not the rows,
            # wherever the rows lie (a daily feed leaves them in date order).
            models.Index(fields=["customer", "date"], include=["revenue_cents", "cost_of_goods_cents", "product"],
                         name="txn_customer_date_sums_idx"),
            models.Index(fields=["date"], name="transaction_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.date} {self.revenue}"

    @property
    def margin(self):
        return self.revenue - self.cost_of_goods


class SurveyAnswer(models.Model):
    """One answer to the Net Promoter question "How likely are you to recommend us?" (0-10).

    Promoters answer 9-10, detractors 0-6; NPS = % promoters - % detractors (Reichheld 2003).
    """

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="survey_answers", db_index=False
    )
    answered_on = models.DateField(_("answered on"))
    score = models.PositiveSmallIntegerField(_("score (0-10)"))
    comment = models.TextField(_("comment"), blank=True)
    contact = models.CharField(_("contact"), max_length=200, blank=True)
    external_id = models.CharField(_("external id"), max_length=64, null=True, blank=True)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("logged by"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("survey answer")
        verbose_name_plural = _("survey answers")
        ordering = ["-answered_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=10),
                name="survey_answer_score_range",
                violation_error_message=_("The score lies between 0 and 10."),
            ),
            models.UniqueConstraint(
                fields=["external_id"], name="survey_answer_external_id_unique",
                condition=Q(external_id__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "answered_on"], name="survey_customer_date_idx"),
            # Covering: the dashboard's NPS counts over a few years of answers read the index only.
            models.Index(fields=["answered_on"], include=["score", "customer"], name="survey_date_score_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.answered_on}: {self.score}"


class ApiToken(models.Model):
    """A named API key a user made for a script or tool. Only a hash of the key is stored: the
    key is shown once, when it is made. Sent as `Authorization: Token <key>`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(_("key starts with"), max_length=12)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
