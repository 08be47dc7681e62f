"""Import customers, transactions or services from a CSV file (formats: cockpit/importing/__init__.py)."""

from django.core.management.base import BaseCommand, CommandError

from cockpit import importing


class Command(BaseCommand):
    help = (
        "Import a CSV file of customers, transactions or services. Every row is checked first; "
        "one bad row imports nothing. Re-importing the same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=importing.KINDS)
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="Check and count, write nothing.")
        parser.add_argument("--delimiter", help="Field separator (default: detected; 'tab' for tabs).")

    def handle(self, *args, kind, file, dry_run, delimiter, **options):
        verbosity = options["verbosity"]

        def progress(rows: int, seconds: float) -> None:
            if verbosity >= 1:
                self.stdout.write(f"{rows:>12,} rows read  {rows / max(seconds, 1e-9):>10,.0f} rows/s")

        try:
            result = importing.import_file(kind=kind, path=file, dry_run=dry_run, delimiter=delimiter, progress=progress)
        except FileNotFoundError as exc:
            raise CommandError(f"No such file: {file}") from exc
        self.stdout.write(
            f"{result.kind}: {result.rows:,} rows ({result.encoding}, separator {result.delimiter_name}, "
            f"decimal {'comma' if result.decimal_comma else 'point'}) in {result.seconds:.1f} s, "
            f"{result.rows_per_second:,.0f} rows/s"
        )
        if not result.ok:
            for error in result.errors:
                self.stderr.write(str(error))
            if result.more_errors:
                self.stderr.write(f"... and {result.more_errors:,} more errors.")
            raise CommandError(f"{result.error_count:,} errors: nothing was imported.")
        verb = "would be" if dry_run else "were"
        self.stdout.write(self.style.SUCCESS(
            f"{result.new:,} new, {result.updated:,} updated, {result.unchanged:,} unchanged rows {verb} imported"
            + (" (dry run: nothing written)." if dry_run else ".")
        ))
