from django.urls import path

from . import views

app_name = "services"

urlpatterns = [
    path("log/", views.log_service, name="log"),
    path("customers/search/", views.customer_search, name="customer-search"),
    path("events/<int:pk>/edit/", views.edit_service_event, name="event-edit"),
    path("events/<int:pk>/delete/", views.delete_service_event, name="event-delete"),
    path("events/<int:pk>/history/", views.service_event_history, name="event-history"),
]
