import datetime as dt
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from valuation import offline


class Command(BaseCommand):
    help = (
        "Fit the lifetime-value models on a transactions CSV (customer_id,date,revenue[,cost]) up to "
        "the calibration end and print parameters and a back-test as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--calibration-end", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument("--output", type=Path, help="Write one row of values per customer to this CSV.")

    def handle(self, *args, file, calibration_end, output=None, **options):
        try:
            result = offline.analyse(offline.read_transactions(file), calibration_end=calibration_end)
        except offline.ExportError as exc:
            raise CommandError(str(exc)) from exc
        if output:
            result.values.to_csv(output, index_label="customer_id", float_format="%.4f")
            result.report["output"] = str(output)
        self.stdout.write(json.dumps(result.report, indent=2))
