"""Mounted by config/urls.py at "notifications/"."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("whatsapp/webhook/", views.whatsapp_webhook, name="whatsapp-webhook"),
    path("credentials/", views.credentials_page, name="credentials-page"),
    path("credentials/<str:token>/", views.credentials_reveal, name="credentials-reveal"),
]
