"""Messages from templates: staff overrides in the database over file defaults.

Files: templates/notifications/<event>/<lang>/subject.txt, body.txt, whatsapp.txt and optional
body.html (otherwise the text is laid out in notifications/_layout.html). A missing language
falls back to English. Text is rendered without HTML escaping; HTML with it.

Secrets are rendered only into the outgoing message: `render_for_delivery` returns the outgoing
message and a stored copy in which every secret reads MASK.
"""

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, TemplateDoesNotExist, TemplateSyntaxError, engines
from django.urls import NoReverseMatch, reverse

from notifications.events import SAMPLE_CREDENTIALS_URL, SAMPLE_SECRETS, sample_context, spec_for
from notifications.models import Channel, Language, NotificationEvent, NotificationTemplate

logger = logging.getLogger(__name__)

MASK = "********"


@dataclass(frozen=True)
class WhatsAppTemplateMessage:
    name: str
    language: str
    parameters: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    template: str
    whatsapp_template: WhatsAppTemplateMessage | None = None


class RenderError(Exception):
    """No usable template for this message (a permanent failure of the delivery)."""


def _engine():
    return engines["django"].engine


def _render_string(source: str, context: dict[str, Any], *, autoescape: bool) -> str:
    return _engine().from_string(source).render(Context(context, autoescape=autoescape))


def _render_file(name: str, context: dict[str, Any], *, autoescape: bool) -> str:
    return _engine().get_template(name).render(Context(context, autoescape=autoescape))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:255]


def _tidy(text: str) -> str:
    """Trim trailing spaces and collapse runs of blank lines left by template tags."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _html(context: dict[str, Any], text: str, subject: str, source: str | None) -> str:
    layout_context = {**context, "body_text": text, "subject": subject}
    if source is not None:
        layout_context["content_html"] = _render_string(source, context, autoescape=True)
    return _render_file("notifications/_layout.html", layout_context, autoescape=True)


def _from_database(
    row: NotificationTemplate, context: dict[str, Any], channel: str
) -> RenderedMessage:
    text = _tidy(_render_string(row.body, context, autoescape=False))
    if channel == Channel.WHATSAPP:
        return RenderedMessage(subject="", text=text, html="", template=f"db:{row.pk}")
    subject = _one_line(_render_string(row.subject, context, autoescape=False))
    html = _html(context, text, subject, row.body_html or None)
    return RenderedMessage(subject=subject, text=text, html=html, template=f"db:{row.pk}")


def _from_files(
    event: str, language: str, context: dict[str, Any], channel: str
) -> RenderedMessage:
    folder = f"notifications/{event}/{language}"
    if channel == Channel.WHATSAPP:
        name = f"{folder}/whatsapp.txt"
        text = _tidy(_render_file(name, context, autoescape=False))
        return RenderedMessage(subject="", text=text, html="", template=f"file:{name}")
    name = f"{folder}/body.txt"
    text = _tidy(_render_file(name, context, autoescape=False))
    subject = _one_line(_render_file(f"{folder}/subject.txt", context, autoescape=False))
    try:
        html = _render_file(
            f"{folder}/body.html",
            {**context, "body_text": text, "subject": subject},
            autoescape=True,
        )
    except TemplateDoesNotExist:
        html = _html(context, text, subject, None)
    return RenderedMessage(subject=subject, text=text, html=html, template=f"file:{name}")


def render_message(
    *, event: str, language: str, channel: str, context: dict[str, Any]
) -> RenderedMessage:
    """Render `event` for `channel` in `language` (database override, else files, else English)."""
    row = (
        NotificationTemplate.objects.filter(
            event=event, language=language, channel=channel, is_active=True
        )
        .order_by("pk")
        .first()
    )
    if row is not None:
        try:
            return _from_database(row, context, channel)
        except (TemplateSyntaxError, TemplateDoesNotExist) as exc:
            logger.error(
                "notification template %s is broken (%s); using the file default",
                row.pk,
                type(exc).__name__,
            )
    for lang in dict.fromkeys([language, Language.ENGLISH]):
        try:
            return _from_files(event, lang, context, channel)
        except TemplateDoesNotExist:
            continue
    raise RenderError(f"No template for {event}/{language}/{channel}.")


def base_context(*, user: Any, language: str) -> dict[str, Any]:
    """What every template gets besides the caller's context."""
    portal_url = settings.PORTAL_BASE_URL.rstrip("/")
    try:
        dashboard_path = reverse("dashboard")
    except NoReverseMatch:
        dashboard_path = "/dashboard/"
    name = ""
    if user is not None:
        name = (user.get_full_name() or "").strip() if hasattr(user, "get_full_name") else ""
        if not name:
            email = getattr(user, "email", "") or user.get_username()
            name = email.split("@")[0]
    return {
        "portal_name": settings.PORTAL_NAME,
        "portal_url": portal_url,
        "dashboard_url": f"{portal_url}{dashboard_path}",
        "support_email": settings.SUPPORT_EMAIL,
        "support_whatsapp": settings.SUPPORT_WHATSAPP,
        "customer_name": name,
        "language": language,
    }


def message_context(
    *, base: dict[str, Any], context: dict[str, Any], secrets: dict[str, str], masked: bool
) -> dict[str, Any]:
    """base < caller context < secrets (or MASK for each secret when `masked`)."""
    merged = {**base, **context}
    merged.update({key: (MASK if masked else value) for key, value in secrets.items()})
    # One variable for "the password, or the link to it" (WhatsApp template parameters).
    merged["credentials_access"] = merged.get("credentials_url") or merged.get("panel_password", "")
    return merged


def whatsapp_template_for(
    *, event: str, language: str, context: dict[str, Any]
) -> WhatsAppTemplateMessage | None:
    name = settings.WHATSAPP_TEMPLATES.get(event, "")
    if not name:
        return None
    code = settings.WHATSAPP_TEMPLATE_LANGUAGES.get(language) or language
    parameters = []
    for key in spec_for(event).whatsapp_params:
        value = context.get(key)
        # Cloud API parameters: no newlines or tabs, never empty.
        text = " ".join(str(value).split()) if value not in (None, "") else "-"
        parameters.append(text[:1024])
    return WhatsAppTemplateMessage(name=name, language=code, parameters=parameters)


def render_pair(
    *,
    event: str,
    language: str,
    channel: str,
    base: dict[str, Any],
    context: dict[str, Any],
    secrets: dict[str, str],
) -> tuple[RenderedMessage, RenderedMessage]:
    """(outgoing message with the secrets, stored copy with MASK instead)."""
    outgoing_context = message_context(base=base, context=context, secrets=secrets, masked=False)
    stored_context = message_context(base=base, context=context, secrets=secrets, masked=True)
    outgoing = render_message(
        event=event, language=language, channel=channel, context=outgoing_context
    )
    stored = render_message(event=event, language=language, channel=channel, context=stored_context)
    if channel == Channel.WHATSAPP:
        wa = whatsapp_template_for(event=event, language=language, context=outgoing_context)
        if wa is not None:
            label = f"wa:{wa.name}/{wa.language}"
            outgoing = RenderedMessage("", outgoing.text, "", label, wa)
            stored = RenderedMessage("", stored.text, "", label, None)
    return outgoing, stored


def sample_secrets(*, event: str, mode: str) -> dict[str, str]:
    """Secrets a preview of `event` renders with (link or inline)."""
    if not spec_for(event).secret_keys:
        return {}
    if mode == "link":
        return {"credentials_url": SAMPLE_CREDENTIALS_URL}
    return {key: SAMPLE_SECRETS[key] for key in spec_for(event).secret_keys}


def render_preview(
    *,
    event: str,
    language: str,
    channel: str,
    mode: str | None = None,
    row: NotificationTemplate | None = None,
) -> RenderedMessage:
    """`event` rendered with its sample context, as the customer would receive it.

    With `row`: that database template (even if inactive); otherwise what a send would use.
    """
    mode = mode or settings.CREDENTIALS_DELIVERY
    base = base_context(user=None, language=language)
    base["customer_name"] = "Alice"
    context = message_context(
        base=base,
        context=sample_context(event),
        secrets=sample_secrets(event=event, mode=mode),
        masked=False,
    )
    if row is not None:
        return _from_database(row, context, channel)
    return render_message(event=event, language=language, channel=channel, context=context)


def template_validate(row: NotificationTemplate) -> None:
    """ValidationError unless every part of `row` compiles and renders with a sample context."""
    if row.event not in NotificationEvent.values:
        return  # field validation reports the bad choice
    base = base_context(user=None, language=row.language or Language.ENGLISH)
    context = message_context(
        base=base,
        context=sample_context(row.event),
        secrets=sample_secrets(event=row.event, mode=settings.CREDENTIALS_DELIVERY),
        masked=False,
    )
    errors = {}
    for field_name in ("subject", "body", "body_html"):
        source = getattr(row, field_name)
        if not source:
            continue
        try:
            _render_string(source, context, autoescape=field_name == "body_html")
        except (TemplateSyntaxError, TemplateDoesNotExist) as exc:
            errors[field_name] = f"Template error: {exc}"
    if errors:
        raise ValidationError(errors)
