from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from customers import views as customer_views

handler500 = "cvm.views.server_error"

urlpatterns = [
    path("", customer_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", include("customers.urls")),
    path("services/", include("services.urls")),
    path("", include("valuation.urls")),
    path("imports/", include("customers.import_urls")),
    path("api/", include("cvm.api_urls")),
    path("admin/", admin.site.urls),
]
