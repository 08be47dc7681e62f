from django.urls import path

app_name = "valuation"

urlpatterns: list = []
