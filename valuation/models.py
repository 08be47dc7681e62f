from decimal import Decimal

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

MONEY = {"max_digits": 16, "decimal_places": 2}


class Segment(models.TextChoices):
    """The four quadrants: classic value (low/high) x value to the customer (low/high).

    The one translatable source of the segment names and strategies the pages show; the
    engine's SEGMENTS keep English constants for CSV runs outside Django.
    """

    UNCRITICAL = "uncritical", _("uncritical")
    PROBLEM = "problem", _("problem group")
    POTENTIAL = "potential", _("check potential")
    INVESTMENT = "investment", _("investment customers")

    @property
    def strategy(self) -> str:
        """The typical strategy for the segment (DOMAIN.md's segmentation table)."""
        return SEGMENT_STRATEGIES[self]


SEGMENT_STRATEGIES = {
    Segment.UNCRITICAL: _("Opportunistic selling; no king's treatment."),
    Segment.PROBLEM: _("Spoiled with free services but not worth it: renegotiate, or it never pays."),
    Segment.POTENTIAL: _(
        "Look for hidden win-win potential; don't over-offer, but ask whether enough is done for loyalty."
    ),
    Segment.INVESTMENT: _("The high service spend pays back in loyalty and follow-up business."),
}


def segment_label(segment: str | None) -> str:
    """The translated name of a segment code; an unknown code is shown as it is."""
    return Segment(segment).label if segment in Segment.values else (segment or "")


def segment_strategy(segment: str | None) -> str:
    """The translated strategy of a segment code; empty for none or an unknown code."""
    return SEGMENT_STRATEGIES[Segment(segment)] if segment in Segment.values else ""


class ValuationRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")

    class Trigger(models.TextChoices):
        NIGHTLY = "nightly", _("nightly")
        MANUAL = "manual", _("manual")
        COMMAND = "command", _("command")

    as_of = models.DateField(_("as of"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices, default=Trigger.NIGHTLY)
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    stage = models.CharField(_("stage"), max_length=40, blank=True)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # host:pid of the process carrying the whole run (in-process runs); empty under Celery,
    # whose chunks record their own holder.
    owner = models.CharField(max_length=200, blank=True)
    settings = models.JSONField(_("settings used"), default=dict)
    parameters = models.JSONField(_("model parameters and fit diagnostics"), default=dict)
    thresholds = models.JSONField(_("thresholds"), default=dict)
    backtest = models.JSONField(_("back-test"), default=dict, blank=True)
    company = models.JSONField(_("company figures"), default=dict, blank=True)
    customer_count = models.PositiveIntegerField(_("customers"), default=0)
    transaction_count = models.PositiveBigIntegerField(_("transactions"), default=0)
    service_event_count = models.PositiveBigIntegerField(_("service events"), default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(_("value rows"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("valuation run")
        verbose_name_plural = _("valuation runs")
        ordering = ["-started_at"]
        # The latest run is the one with the newest as-of date (a back-fill finishes last).
        get_latest_by = ["as_of", "finished_at"]
        constraints = [
            # The lock: the database admits one running valuation at a time.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="valuation_one_running_run"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-finished_at"], name="valuation_run_status_idx"),
            models.Index(fields=["status", "-as_of"], name="valuation_run_as_of_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.as_of} ({self.get_status_display()})"

    @property
    def engine_settings(self):
        """The settings the run used, typed; the defaults live in EngineSettings only."""
        from .engine.settings import EngineSettings  # the engine is pure: loaded only when asked

        return EngineSettings.from_dict(self.settings)


class ValuationChunk(models.Model):
    """One customer-id range of a run, scored and written by one idempotent task."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        DONE = "done", _("done")

    run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="chunks")
    first_customer_id = models.BigIntegerField()
    last_customer_id = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    owner = models.CharField(max_length=200, blank=True)  # host:pid of the claim's holder
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The chunk's customers as prepare_run scored them (services.stage_values): the chunk task
    # writes these, so it neither reads the transactions again nor scores anything. Kept for
    # the latest run only (a rerun of its chunks writes the same values).
    staged = models.BinaryField(null=True, editable=False)

    class Meta:
        ordering = ["run", "first_customer_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "first_customer_id"], name="valuation_chunk_unique_range"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id}: customers {self.first_customer_id}-{self.last_customer_id}"


class ValuationPolicy(models.Model):
    """The manager's valuation settings: one row, read at the start of each run."""

    class ClassicValue(models.TextChoices):
        CLV = "clv", _("CLV (predicted margin)")
        MARGIN_WINDOW = "margin_window", _("margin in the window")

    class SegmentPolicy(models.TextChoices):
        MEDIAN = "median", _("medians of active customers")
        QUANTILE = "quantile", _("quantile of active customers")
        FIXED = "fixed", _("fixed amounts")

    window_months = models.PositiveSmallIntegerField(_("window (months)"), default=12)
    horizon_months = models.PositiveSmallIntegerField(_("CLV horizon (months)"), default=36)
    annual_discount_rate = models.DecimalField(
        _("annual discount rate"), max_digits=5, decimal_places=4, default=Decimal("0.1000")
    )
    abc_a_share = models.DecimalField(_("A share of margin"), max_digits=4, decimal_places=3, default=Decimal("0.800"))
    abc_b_share = models.DecimalField(
        _("A+B share of margin"), max_digits=4, decimal_places=3, default=Decimal("0.950")
    )
    classic_value = models.CharField(
        _("classic value"), max_length=20, choices=ClassicValue.choices, default=ClassicValue.CLV
    )
    segment_policy = models.CharField(
        _("segment thresholds"), max_length=10, choices=SegmentPolicy.choices, default=SegmentPolicy.MEDIAN
    )
    segment_quantile = models.DecimalField(
        _("quantile"), max_digits=4, decimal_places=3, default=Decimal("0.500")
    )
    fixed_classic_threshold = models.DecimalField(_("fixed classic value threshold"), null=True, blank=True, **MONEY)
    fixed_value_to_threshold = models.DecimalField(
        _("fixed value-to-customer threshold"), null=True, blank=True, **MONEY
    )
    holdout_weeks = models.PositiveSmallIntegerField(_("back-test holdout (weeks)"), default=26)
    hours_per_day = models.DecimalField(_("hours in a day of service"), max_digits=4, decimal_places=2, default=Decimal("8.00"))
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("valuation policy")
        verbose_name_plural = _("valuation policy")
        constraints = [
            models.CheckConstraint(
                condition=Q(abc_a_share__gt=0) & Q(abc_a_share__lte=models.F("abc_b_share")) & Q(abc_b_share__lte=1),
                name="valuation_policy_abc_shares_ordered",
                violation_error_message=_("ABC shares must satisfy 0 < A <= A+B <= 1."),
            ),
            models.CheckConstraint(
                condition=Q(segment_quantile__gt=0) & Q(segment_quantile__lt=1),
                name="valuation_policy_quantile_range",
                violation_error_message=_("The quantile must lie between 0 and 1."),
            ),
            models.CheckConstraint(
                condition=Q(window_months__gte=1) & Q(horizon_months__gte=1),
                name="valuation_policy_positive_periods",
                violation_error_message=_("Window and horizon must be at least one month."),
            ),
        ]

    def __str__(self) -> str:
        return str(_("valuation policy"))


class ValueBasis(models.TextChoices):
    """Where a customer's future figures come from (engine.value.value_customers)."""

    MODEL = "model", _("model")
    TRAILING = "trailing_margin_rate", _("trailing margin rate")
    LOST = "lost", _("lost customer")
    NO_PURCHASE = "no_purchase", _("no purchase yet")


class CustomerValue(models.Model):
    """Both value dimensions of one customer in one valuation run."""

    # Both keys are indexed through the composite constraint and index below.
    run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="values", db_index=False)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="values", db_index=False
    )
    # value from the customer, history
    revenue_lifetime = models.DecimalField(_("lifetime revenue"), **MONEY)
    margin_lifetime = models.DecimalField(_("lifetime margin"), **MONEY)
    revenue_window = models.DecimalField(_("revenue (window)"), **MONEY)
    margin_window = models.DecimalField(_("margin (window)"), **MONEY)
    profit_after_services = models.DecimalField(_("profit after service costs"), **MONEY)
    share_of_supply = models.FloatField(_("share of supply"), null=True, blank=True)
    abc_class = models.CharField(_("ABC class"), max_length=1)
    purchase_days = models.PositiveIntegerField(default=0)
    # value from the customer, future
    # NULL: not claimed. When the model's fit fails its checks the run values customers by
    # their trailing margin rate and says nothing about P(alive), purchases or ranges.
    p_alive = models.FloatField(_("probability alive"), null=True, blank=True)
    expected_purchases = models.FloatField(_("expected purchases"), null=True, blank=True)
    clv = models.DecimalField(_("CLV"), **MONEY)
    clv_low = models.DecimalField(_("CLV low"), null=True, blank=True, **MONEY)
    clv_high = models.DecimalField(_("CLV high"), null=True, blank=True, **MONEY)
    clv_to_infinity = models.DecimalField(_("value to infinity"), null=True, blank=True, **MONEY)
    median_lifetime_weeks = models.FloatField(_("median remaining lifetime (weeks)"), null=True, blank=True)
    basis = models.CharField(_("basis of the future value"), max_length=24, choices=ValueBasis.choices,
                             default=ValueBasis.MODEL)
    is_thin = models.BooleanField(_("thin history"), default=False)
    referral_value = models.DecimalField(_("referral value"), default=0, **MONEY)
    # value to the customer
    value_to_customer = models.DecimalField(_("value to the customer"), **MONEY)
    service_count = models.PositiveIntegerField(_("services"), default=0)
    service_hours = models.DecimalField(_("service hours"), max_digits=12, decimal_places=2, default=0)
    value_to_by_type = models.JSONField(_("value to the customer by type"), default=dict, blank=True)
    segment = models.CharField(_("segment"), max_length=12, choices=Segment.choices)
    # The model inputs the CLV was computed from (t_x and T in weeks, the mean margin of the
    # repeat purchases, the mean margin per purchase day that the spend fallback uses): with
    # purchase_days, margin_window and basis, re-scoring them with the run's stored models
    # gives the stored CLV, which explains a change between two runs (engine/attribution.py).
    # Empty in rows written before they were kept.
    recency_weeks = models.FloatField(null=True, blank=True)
    age_weeks = models.FloatField(null=True, blank=True)
    mean_repeat_margin = models.FloatField(null=True, blank=True)
    mean_purchase_margin = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("customer value")
        verbose_name_plural = _("customer values")
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="customer_value_one_per_run"),
        ]
        indexes = [
            models.Index(fields=["customer", "run"], name="cv_history_idx"),
            # The customer list sorts a run's rows by any of these columns, the customer id
            # breaking ties in the same direction: read forwards or backwards, each index
            # gives a page straight away (without one, each sort ordered a million rows:
            # ~1.8 s at 1M customers). The dashboard's action lists use them too.
            models.Index(fields=["run", "segment", "customer"], name="cv_segment_idx"),
            models.Index(fields=["run", "abc_class", "customer"], name="cv_abc_idx"),
            models.Index(fields=["run", "clv", "customer"], name="cv_clv_idx"),
            models.Index(fields=["run", "profit_after_services", "customer"], name="cv_profit_idx"),
            models.Index(fields=["run", "margin_window", "customer"], name="cv_margin_idx"),
            models.Index(fields=["run", "revenue_window", "customer"], name="cv_revenue_idx"),
            models.Index(fields=["run", "value_to_customer", "customer"], name="cv_value_to_idx"),
            models.Index(fields=["run", "p_alive", "customer"], name="cv_p_alive_idx"),
            models.Index(fields=["run", "service_count", "customer"], name="cv_service_count_idx"),
            # One segment sorted by CLV or by value to the customer: the segment's rows lie
            # far down the plain CLV index (the problem group's CLVs are the lowest), so
            # walking it took ~0.65 s before the first row of that segment came up.
            models.Index(fields=["run", "segment", "clv", "customer"], name="cv_segment_clv_idx"),
            models.Index(fields=["run", "segment", "value_to_customer", "customer"], name="cv_segment_value_to_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in run {self.run_id}"

    @property
    def median_lifetime_months(self) -> float | None:
        """The median remaining lifetime in months (365.2425 / 12 days each)."""
        if self.median_lifetime_weeks is None:
            return None
        return self.median_lifetime_weeks * 7 / (365.2425 / 12)


class WorkItem(models.Model):
    """One reason to act on one customer, found when a run completed (valuation/worklist.py).

    Stored per run so a rep's worklist is one indexed read, whatever the number of customers.
    `fingerprint` names the situation (e.g. "problem", "investment>uncritical"): a done or
    snoozed item stays hidden while its fingerprint is unchanged.
    """

    class Reason(models.TextChoices):
        WIN_BACK = "win_back", _("win back")
        RENEGOTIATE = "renegotiate", _("renegotiate free services")
        SEGMENT_DOWN = "segment_down", _("moved down a segment")
        SEGMENT_UP = "segment_up", _("moved up a segment")
        SERVICE_SPEND = "service_spend", _("free-service spend rising")
        LOST_VALUABLE = "lost_valuable", _("lost valuable customer")
        DETRACTOR = "detractor", _("valuable detractor")

    run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="work_items", db_index=False)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="work_items", db_index=False
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    # Money at stake, the worklist's order: see valuation/worklist.py for each reason's figure.
    amount = models.DecimalField(_("at stake"), **MONEY)
    before = models.FloatField(null=True, blank=True)
    after = models.FloatField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("work item")
        verbose_name_plural = _("work items")
        constraints = [
            models.UniqueConstraint(fields=["run", "customer", "reason"], name="work_item_one_per_reason"),
        ]
        indexes = [
            models.Index(fields=["run", "-amount", "customer"], name="work_item_amount_idx"),
            # Inside sales' list (the free-service reasons only): walking the index above skipped
            # ~40,000 other items at a million customers before finding 25.
            models.Index(fields=["run", "-amount", "customer"], name="work_item_service_amount_idx",
                         condition=Q(reason__in=["renegotiate", "service_spend"])),
            models.Index(fields=["customer", "run"], name="work_item_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.reason} in run {self.run_id}"


class WorkItemDismissal(models.Model):
    """A user marked a worklist item done, or snoozed it until a day."""

    class State(models.TextChoices):
        DONE = "done", _("done")
        SNOOZED = "snoozed", _("snoozed")

    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=WorkItem.Reason.choices)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=State.choices, default=State.DONE)
    until = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "customer", "reason"], name="work_item_dismissal_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.state} {self.customer_id}:{self.reason}"


class PeerCategory(models.Model):
    """What similar customers buy: per run, industry and size class (ABC class), each product
    or category bought in the run's window, by how many of the peers and for what margin.
    Found when a run completes (valuation/cross_sell.py); the cockpit's cross-sell hints read it."""

    run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="peer_categories", db_index=False)
    industry = models.CharField(max_length=100)
    abc_class = models.CharField(max_length=1)
    category = models.CharField(max_length=100)
    buyers = models.PositiveIntegerField()
    peers = models.PositiveIntegerField()
    margin_per_buyer = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "industry", "abc_class", "category"], name="peer_category_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.industry}/{self.abc_class}: {self.category}"


class RunSummary(models.Model):
    """What the dashboard shows of one completed run, written once when the run completes.

    With the cells and views below any owner/region/industry filter is a read of a few
    hundred summed rows and one stored view instead of scans of the run's value rows.
    """

    run = models.OneToOneField(ValuationRun, on_delete=models.CASCADE, primary_key=True, related_name="summary")
    # The default comparison run when this run completed; its migration counts are in the cells.
    earlier = models.ForeignKey(ValuationRun, null=True, on_delete=models.SET_NULL, related_name="+")
    # Per segment: promoters, passives and detractors among the answers of the 12 months up to
    # the run's date (null: not counted, the dashboard reads the answers itself).
    nps_by_segment = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"summary of run {self.run_id}"


class RunSummaryView(models.Model):
    """The figures of one dashboard filter that cells cannot sum, without translated text: the
    whale curve's points, the scatter sample's points, the work lists' customer ids, and the
    service cost per type and month. One row per filter the dashboard offers that has
    customers: owner, region and industry each given or "every" (None or "")."""

    run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="summary_views")
    owner_id = models.BigIntegerField(null=True)  # None: every owner
    region = models.CharField(max_length=100, blank=True)  # "": every region
    industry = models.CharField(max_length=100, blank=True)  # "": every industry
    # The figures as compressed JSON (run_summary.pack): as jsonb, storing a million customers'
    # views took PostgreSQL longer than computing them.
    packed = models.BinaryField(default=b"")

    class Meta:
        indexes = [models.Index(fields=["run", "owner_id", "region", "industry"], name="run_summary_view_idx")]

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.owner_id} {self.region} {self.industry}"


class RunSummaryCell(models.Model):
    """One run's value rows summed per segment x owner x region x industry x segment in the
    earlier run ("" when the customer was not in it). Owner, region and industry are the
    customer's when the run completed."""

    run = models.ForeignKey(ValuationRun, on_delete=models.CASCADE, related_name="summary_cells")
    segment = models.CharField(max_length=12)
    before_segment = models.CharField(max_length=12, blank=True)
    # A plain id: removing a user must not change a past run's figures.
    owner_id = models.BigIntegerField(null=True)
    region = models.CharField(max_length=100, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    customers = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=20, decimal_places=2)
    margin = models.DecimalField(max_digits=20, decimal_places=2)
    service_cost = models.DecimalField(max_digits=20, decimal_places=2)
    clv = models.DecimalField(max_digits=20, decimal_places=2)
    profit = models.DecimalField(max_digits=20, decimal_places=2)
    profitable = models.PositiveIntegerField()
    unprofitable = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.segment} {self.owner_id} {self.region} {self.industry}"
