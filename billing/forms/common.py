"""Shared form helpers."""

from django import forms

from common.errors import ApplicationError


def add_service_errors(form: forms.Form, error: ApplicationError) -> None:
    """Show a service's field errors on the matching form fields (others on the form)."""
    if not error.field_errors:
        form.add_error(None, error.message)
        return
    for field, messages in error.field_errors.items():
        name = field
        if field.startswith("variables."):
            name = f"var_{field.removeprefix('variables.')}"
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message)
