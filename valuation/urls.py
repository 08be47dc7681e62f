from django.urls import path

from . import views

app_name = "valuation"

urlpatterns = [
    path("dashboard/", views.segment_dashboard, name="dashboard"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/standard-costs/", views.add_standard_cost, name="add_standard_cost"),
    path("settings/segment-policy/", views.update_segment_policy, name="segment_policy"),
    path("settings/valuation/", views.update_valuation_settings, name="valuation_settings"),
    path("settings/recompute/", views.recompute_now, name="recompute"),
    path("settings/runs/<int:pk>/status/", views.run_status, name="run_status"),
]
