import datetime as dt
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core import csvfile
from valuation import engine, offline


class Command(BaseCommand):
    help = (
        "Value the customers of a transactions CSV (customer_id,date,revenue[,cost]; the formats "
        "import_csv reads) on the history up to the calibration end, as the nightly run does, and "
        "print the model choice, the fit quality, the parameters and a back-test on the rows after "
        "it (up to --holdout-end, default the last day) as JSON."
    )
    # Reads a file and touches neither the database nor any app's models: the system checks
    # (a good part of a second of the command's start) have nothing to check for it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--calibration-end", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument(
            "--holdout-end",
            type=dt.date.fromisoformat,
            help="YYYY-MM-DD, inclusive (default: the last day in the file)",
        )
        parser.add_argument(
            "--model",
            choices=engine.PURCHASE_MODELS,
            help="Use this purchase model instead of choosing one by a back-test inside the calibration history.",
        )
        parser.add_argument(
            "--output",
            type=Path,
            help="Write one row of values per customer to this CSV (with a holdout: holdout_expected, "
            "holdout_low, holdout_high, the undiscounted margin after the calibration end).",
        )

    def handle(self, *args, file, calibration_end, holdout_end=None, output=None, model=None, **options):
        try:
            result = offline.analyse(
                offline.read_transactions(file),
                calibration_end=calibration_end,
                holdout_end=holdout_end,
                model=model,
                values=output is not None,  # scoring every customer is only needed for the file
            )
        except offline.ExportError as exc:
            raise CommandError(str(exc)) from exc
        if output:
            csvfile.write_frame(result.values, output, index_label="customer_id", decimals=4)
            result.report["output"] = str(output)
        self.stdout.write(json.dumps(result.report, indent=2, allow_nan=False))
