"""Inbound webhooks. Forged or stale deliveries get 400 and change nothing."""

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.errors import BillingErrorCode
from billing.services.stripe_payments import stripe_webhook_receive
from billing.stripe_client import WebhookRejected

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_webhook_receive(
            payload=request.body,
            signature_header=request.headers.get("Stripe-Signature", ""),
        )
    except WebhookRejected as exc:
        # The reason only; never the payload or the signature header.
        logger.warning(
            "stripe webhook rejected (%s) from %s: %s",
            _REJECTION_KIND.get(exc.code, "refused"),
            request.META.get("REMOTE_ADDR"),
            exc.message,
        )
        return JsonResponse({"message": exc.message, "code": exc.code}, status=400)
    return JsonResponse({"received": True, "status": event.status})


# How a rejection reads in the log, so forged deliveries are easy to grep for.
_REJECTION_KIND = {
    BillingErrorCode.INVALID_SIGNATURE: "forged or unsigned",
    BillingErrorCode.INVALID_EVENT: "malformed",
}
