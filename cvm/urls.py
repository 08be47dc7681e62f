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
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", include(cockpit_urls.customer_patterns)),
    path("services/", include("services.urls")),
    path("", include(cockpit_urls.manager_patterns)),
    path("imports/", include(cockpit_urls.import_patterns)),
    path("api/", include("cvm.api_urls")),
    path("admin/", admin.site.urls),
]
