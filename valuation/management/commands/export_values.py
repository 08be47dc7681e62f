"""Export the latest customer values (both value dimensions) as CSV or Excel."""

import csv
import sys

from django.core.management.base import BaseCommand, CommandError

from valuation import exporting


class Command(BaseCommand):
    help = "Write the latest completed run's customer values to CSV (default: standard output) or .xlsx."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument("-o", "--output", help="Target file (required for xlsx).")

    def handle(self, *args, format, output, **options):
        if format == "xlsx":
            if not output:
                raise CommandError("--output is required for xlsx.")
            count = exporting.write_xlsx(output)
        else:
            handle = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout  # noqa: SIM115 - closed below unless stdout
            try:
                writer = csv.writer(handle)
                writer.writerow(exporting.HEADER)
                count = 0
                for row in exporting.value_rows():
                    writer.writerow(row)
                    count += 1
            finally:
                if output:
                    handle.close()
        if output:
            self.stderr.write(f"{count:,} customers written to {output}.")
