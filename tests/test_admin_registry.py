"""Every model of ours is in the admin: registered, or shown inline on its parent's page."""

from django.apps import apps
from django.contrib import admin

OUR_APPS = ("common", "billing", "servers", "provisioning", "notifications")


def test_every_model_is_in_the_admin():
    inline_models = {
        inline.model
        for model_admin in admin.site._registry.values()
        for inline in model_admin.inlines
    }
    missing = [
        f"{model._meta.app_label}.{model.__name__}"
        for app in OUR_APPS
        for model in apps.get_app_config(app).get_models()
        if model not in admin.site._registry and model not in inline_models
    ]
    assert missing == []


def test_no_secret_field_is_listed():
    secret_words = ("password", "token", "secret", "api_key")
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        columns = [c for c in model_admin.list_display if isinstance(c, str)]
        assert not [c for c in columns if any(w in c for w in secret_words)], model
