import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from valuation import history, services


class Command(BaseCommand):
    help = "Value every customer now, in this process (the nightly run without Celery), with progress."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="Valuation date YYYY-MM-DD (default: today).")
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing when that date already has a completed run."
        )

    def handle(self, *args, as_of=None, if_missing=False, **options):
        if as_of is not None and not history.kept_after_thinning(as_of=as_of, today=services.today()):
            raise CommandError(
                f"{as_of}: the value history's thinning would remove this run right after it completes "
                f"(it keeps every run of the last {settings.CVM_VALUATION_DAILY_DAYS} days, the last run of each "
                f"month up to {settings.CVM_VALUATION_RETENTION_DAYS} days and the "
                f"{settings.CVM_VALUATION_FULL_INDEX_RUNS} newest runs). Choose a later date or a month's last day."
            )
        if if_missing and services.has_completed_run(as_of=as_of or services.today()):
            self.stdout.write("Values for that date exist already; nothing recomputed (--if-missing).")
            return
        try:
            run = services.run_valuation(as_of=as_of, progress=self.stdout.write)
        except services.RunAlreadyRunning as exc:
            raise CommandError(f"{exc} Wait for it to finish (see the settings page).") from exc
        if run.status != run.Status.COMPLETED:
            raise CommandError(f"Run {run.pk} ended {run.status}: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"Valuation as of {run.as_of} completed: {run.rows_written} customers."))
