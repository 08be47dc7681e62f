import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from valuation import services


class Command(BaseCommand):
    help = "Value every customer now, in this process (the nightly run without Celery), with progress."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="Valuation date YYYY-MM-DD (default: today).")
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing when that date already has a completed run."
        )

    def handle(self, *args, as_of=None, if_missing=False, **options):
        retained_from = services.today() - dt.timedelta(days=settings.CVM_VALUATION_RETENTION_DAYS)
        if as_of is not None and as_of < retained_from:
            # The value history's thinning would drop such a run the moment it completes.
            raise CommandError(
                f"{as_of} lies beyond the value history's retention of {settings.CVM_VALUATION_RETENTION_DAYS} days "
                f"(CVM_VALUATION_RETENTION_DAYS): its values would be removed right after the run. "
                f"Choose {retained_from} or later."
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
