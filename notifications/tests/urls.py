"""The project's URLs plus notifications.urls (until config/urls.py mounts it itself)."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = list(project_urlpatterns)
if not any(getattr(p, "namespace", None) == "notifications" for p in urlpatterns):
    urlpatterns.append(path("notifications/", include("notifications.urls")))
