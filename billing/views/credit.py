"""The customer's account credit: balances per currency and the ledger's history."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing import selectors

# How many ledger rows the page shows (newest first).
HISTORY_ROWS = 100


@login_required
def credit_overview(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "billing/credit.html",
        {
            "balances": selectors.credit_balances(customer_id=request.user.pk),
            "entries": selectors.credit_history(customer_id=request.user.pk, limit=HISTORY_ROWS),
        },
    )
