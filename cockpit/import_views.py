"""The manager's upload page: check a CSV file, preview it, then commit the import."""

import csv
import datetime as dt
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.files.storage import Storage, storages
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from customers.access import manager_only
from valuation import exporting

from . import importing

SESSION_KEY = "cvm_import"
# Uploaded files wait in the "imports" storage between preview and commit; older ones are removed.
UPLOAD_MAX_AGE = dt.timedelta(hours=24)
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def upload_limit_bytes() -> int:
    return settings.CVM_IMPORT_UPLOAD_MAX_MB * 1024 * 1024


def too_large_message() -> str:
    return _(
        "The file is larger than %(size)s MB, the limit of this page. Import it with the import_csv "
        "command, or split it."
    ) % {"size": settings.CVM_IMPORT_UPLOAD_MAX_MB}


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What the file holds"),
                             choices=[(kind, importing.KIND_LABELS[kind]) for kind in importing.KINDS])
    file = forms.FileField(label=gettext_lazy("CSV file"))
    delimiter = forms.ChoiceField(
        label=gettext_lazy("Separator"), required=False,
        choices=[("", gettext_lazy("detect")), (",", gettext_lazy("comma")), (";", gettext_lazy("semicolon")), ("tab", gettext_lazy("tab"))],
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > upload_limit_bytes():
            raise forms.ValidationError(too_large_message())
        return upload


def upload_storage() -> Storage:
    """Where a checked file waits for its commit: the "imports" storage of STORAGES, which every
    web host sees (the commit may reach another host than the preview did)."""
    return storages["imports"]


def _stored_name(token: str) -> str:
    if not TOKEN_PATTERN.match(token or ""):
        raise Http404
    return f"{token}.csv"


def _remove_expired(storage: Storage) -> None:
    cutoff = timezone.now() - UPLOAD_MAX_AGE
    try:
        names = storage.listdir("")[1]
    except FileNotFoundError:  # nothing stored yet
        return
    for name in names:
        try:
            if name.endswith(".csv") and storage.get_modified_time(name) < cutoff:
                storage.delete(name)
        except FileNotFoundError:  # removed meanwhile by a commit, a cancel or another upload
            continue


def _store(upload) -> str:
    storage = upload_storage()
    _remove_expired(storage)
    token = secrets.token_urlsafe(24)
    if storage.save(_stored_name(token), upload) != _stored_name(token):
        raise RuntimeError("the imports storage renamed an upload")  # a random token never collides
    return token


@contextmanager
def _local_file(token: str) -> Iterator[Path]:
    """The stored file as a path for the importer (it sniffs, scans and COPYs from a file): the
    storage's own file where it has one on this host, else a copy for this request only."""
    storage, name = upload_storage(), _stored_name(token)
    try:
        local_path = Path(storage.path(name))
    except NotImplementedError:  # a storage without local files (object stores)
        local_path = None
    if local_path is not None and local_path.is_file():
        yield local_path
        return
    with storage.open(name, "rb") as source, tempfile.NamedTemporaryFile(suffix=".csv") as local:
        shutil.copyfileobj(source, local, 1 << 20)
        local.flush()
        yield Path(local.name)


def _announced_size(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _forget(request) -> None:
    pending = request.session.pop(SESSION_KEY, None)
    if pending:
        upload_storage().delete(_stored_name(pending["token"]))


@manager_only
def upload(request):
    """GET: the form. POST: store the file, check it completely (nothing written), show the preview."""
    if request.method == "POST" and _announced_size(request) > upload_limit_bytes() + 64 * 1024:
        # Refused before the body is read and stored.
        context = {"form": UploadForm(), "kinds": importing.KINDS, "refused": too_large_message(),
                   "upload_max_mb": settings.CVM_IMPORT_UPLOAD_MAX_MB}
        return render(request, "cockpit/imports/upload.html", context, status=413)
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            _forget(request)
            token = _store(form.cleaned_data["file"])
            pending = {"token": token, "kind": form.cleaned_data["kind"], "delimiter": form.cleaned_data["delimiter"],
                       "name": form.cleaned_data["file"].name}
            with _local_file(token) as path:
                result = importing.import_file(
                    kind=pending["kind"], path=path, dry_run=True, delimiter=pending["delimiter"],
                    user=request.user, time_limit=settings.CVM_IMPORT_PAGE_SECONDS,
                )
            if result.ok:
                request.session[SESSION_KEY] = pending
            else:
                upload_storage().delete(_stored_name(token))
            return render(request, "cockpit/imports/preview.html", {"result": result, "pending": pending})
    else:
        form = UploadForm()
    context = {"form": form, "kinds": importing.KINDS, "upload_max_mb": settings.CVM_IMPORT_UPLOAD_MAX_MB}
    return render(request, "cockpit/imports/upload.html", context)


@manager_only
@require_POST
def commit(request):
    """Import the file checked in the preview; all or nothing, as the preview showed."""
    pending = request.session.get(SESSION_KEY)
    if not pending or not upload_storage().exists(_stored_name(pending["token"])):
        messages.error(request, _("There is no checked file waiting for import; upload it again."))
        return redirect("imports:upload")
    with _local_file(pending["token"]) as path:
        result = importing.import_file(
            kind=pending["kind"], path=path, delimiter=pending["delimiter"], user=request.user,
            time_limit=settings.CVM_IMPORT_PAGE_SECONDS,
        )
    _forget(request)
    if result.ok:
        messages.success(
            request,
            _("%(file)s: %(rows)s rows of %(kind)s imported (%(new)s new, %(updated)s updated, %(unchanged)s unchanged).")
            % {"file": pending["name"], "rows": formats.number_format(result.rows, force_grouping=True),
               "kind": result.kind_label, "new": formats.number_format(result.new, force_grouping=True),
               "updated": formats.number_format(result.updated, force_grouping=True),
               "unchanged": formats.number_format(result.unchanged, force_grouping=True)},
        )
        return redirect("imports:upload")
    # The data changed since the preview: show what is wrong now.
    return render(request, "cockpit/imports/preview.html", {"result": result, "pending": None})


@manager_only
@require_POST
def cancel(request):
    _forget(request)
    messages.info(request, _("The checked file was discarded."))
    return redirect("imports:upload")


class _Echo:
    def write(self, value):
        return value


def _export_name(extension: str) -> str:
    return f"customer-values-{timezone.localdate().isoformat()}.{extension}"


@manager_only
def export_values_csv(request):
    """Headers in the reader's language; in German the CSV German Excel opens as it is."""
    export = exporting.CsvFormat.for_language()
    writer = csv.writer(_Echo(), delimiter=export.delimiter)
    rows = exporting.human_rows(exporting.value_rows(user=request.user))
    lines = (writer.writerow([export.cell(value) for value in row]) for row in _with_header(rows))
    response = StreamingHttpResponse(_with_bom(export.bom, lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_export_name("csv")}"'
    return response


def _with_header(rows):
    yield exporting.human_header()
    yield from rows


def _with_bom(bom: str, lines):
    if bom:
        yield bom
    yield from lines


@manager_only
def export_values_xlsx(request):
    target = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it after sending
    exporting.write_xlsx(target, user=request.user, for_people=True)
    target.seek(0)
    return FileResponse(
        target, as_attachment=True, filename=_export_name("xlsx"),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
