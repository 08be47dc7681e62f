from django.urls import path

from . import import_views

app_name = "imports"

urlpatterns = [
    path("", import_views.upload, name="upload"),
    path("commit/", import_views.commit, name="commit"),
    path("cancel/", import_views.cancel, name="cancel"),
    path("export/values.csv", import_views.export_values_csv, name="export_csv"),
    path("export/values.xlsx", import_views.export_values_xlsx, name="export_xlsx"),
]
