from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from cockpit import home as cockpit_home
from cockpit import urls as cockpit_urls

handler500 = "cvm.views.server_error"

urlpatterns = [
    path("", cockpit_home.home, name="home"),
    path("worklist/<int:pk>/dismiss/", cockpit_home.dismiss_item, name="worklist-dismiss"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Every user changes their own password, or resets a forgotten one by mail.
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("account/password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("account/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "account/password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("account/password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("account/", include(cockpit_urls.account_patterns)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", include(cockpit_urls.customer_patterns)),
    path("services/", include("services.urls")),
    path("", include(cockpit_urls.manager_patterns)),
    path("imports/", include(cockpit_urls.import_patterns)),
    path("api/", include("cvm.api_urls")),
    path("admin/", admin.site.urls),
]
