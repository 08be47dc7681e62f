"""The pages. Their URL namespaces (customers, imports, valuation) are older than this app
and stay, so links and bookmarks keep working."""

from django.urls import path

from . import account_views, dashboard_views, import_views, list_views, nps_views, views

customer_patterns = (
    [
        path("", views.customer_list, name="list"),
        path("saved-filters/", list_views.save_filter, name="save_filter"),
        path("saved-filters/<int:pk>/delete/", list_views.delete_filter, name="delete_filter"),
        path("<int:pk>/", views.customer_detail, name="detail"),
        path("<int:pk>/statement/", views.customer_statement, name="statement"),
        path("<int:pk>/nps/", nps_views.log_answer, name="nps"),
    ],
    "customers",
)

import_patterns = (
    [
        path("", import_views.upload, name="upload"),
        path("commit/", import_views.commit, name="commit"),
        path("cancel/", import_views.cancel, name="cancel"),
        path("export/values.csv", import_views.export_values_csv, name="export_csv"),
        path("export/values.xlsx", import_views.export_values_xlsx, name="export_xlsx"),
    ],
    "imports",
)

manager_patterns = (
    [
        path("dashboard/", dashboard_views.segment_dashboard, name="dashboard"),
        path("settings/", dashboard_views.settings_page, name="settings"),
        path("settings/standard-costs/", dashboard_views.add_standard_cost, name="add_standard_cost"),
        path("settings/service-types/new/", dashboard_views.service_type_new, name="service_type_new"),
        path("settings/service-types/<int:pk>/", dashboard_views.service_type_edit, name="service_type_edit"),
        path("settings/segment-policy/", dashboard_views.update_segment_policy, name="segment_policy"),
        path("settings/valuation/", dashboard_views.update_valuation_settings, name="valuation_settings"),
        path("settings/recompute/", dashboard_views.recompute_now, name="recompute"),
        path("settings/runs/<int:pk>/status/", dashboard_views.run_status, name="run_status"),
    ],
    "valuation",
)

account_patterns = (
    [
        path("tokens/", account_views.api_tokens, name="tokens"),
        path("tokens/<int:pk>/revoke/", account_views.revoke_api_token, name="revoke_token"),
        path("users/", account_views.user_list, name="users"),
        path("users/new/", account_views.user_form, name="user_new"),
        path("users/<int:pk>/", account_views.user_form, name="user_edit"),
    ],
    "account",
)
