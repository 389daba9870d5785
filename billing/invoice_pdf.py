"""An invoice as a PDF, from a plain `InvoiceDocument` (no models here, so it renders the same
for the web page, the e-mail attachment and tests).

ReportLab (BSD, pure Python wheels, no system libraries): WeasyPrint would need Pango and
Cairo from the operating system, which a fresh machine does not have. Its standard Helvetica
covers Latin-1, which English and Indonesian text needs; characters outside it are replaced
by "?" rather than drawn as empty boxes.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle


@dataclass(frozen=True)
class Party:
    """Who issues or receives the invoice, as printed."""

    name: str
    address_lines: tuple[str, ...] = ()
    tax_id: str = ""
    email: str = ""


@dataclass(frozen=True)
class DocumentLine:
    description: str
    quantity: int
    unit_amount: Decimal
    amount: Decimal


@dataclass(frozen=True)
class DocumentPayment:
    date: dt.date
    method: str
    reference: str
    amount: Decimal


@dataclass(frozen=True)
class BankAccount:
    """Where a bank transfer goes (settings.BILLING_BANK_ACCOUNT)."""

    bank_name: str
    account_name: str
    account_number: str
    swift: str = ""
    iban: str = ""


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    status_label: str
    issued_on: dt.date
    due_on: dt.date
    currency: str
    seller: Party
    customer: Party
    lines: tuple[DocumentLine, ...]
    subtotal: Decimal
    discount_total: Decimal
    # What is left after discount and account credit (the credit is also a negative line).
    total: Decimal
    amount_due: Decimal
    payments: tuple[DocumentPayment, ...] = ()
    period: tuple[dt.date, dt.date] | None = None
    # Printed only while something is due and the portal takes bank transfers.
    bank_account: BankAccount | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Account credit spent on the invoice when it was issued.
    credit_applied: Decimal = Decimal("0")


def _text(value: str) -> str:
    """Escape for ReportLab's mini-markup and keep to what Helvetica can draw."""
    return escape(value.encode("latin-1", "replace").decode("latin-1"))


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def render_invoice_pdf(document: InvoiceDocument) -> bytes:
    """The invoice as PDF bytes (A4)."""
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Invoice {document.number}",
        author=document.seller.name,
    )
    styles = getSampleStyleSheet()
    normal = styles["Normal"]
    small = ParagraphStyle("small", parent=normal, fontSize=8, leading=10)
    right = ParagraphStyle("right", parent=normal, alignment=TA_RIGHT)
    heading = styles["Heading1"]
    subheading = styles["Heading3"]

    story: list[Flowable] = [
        Paragraph(_text(f"Invoice {document.number}"), heading),
        _parties_table(document, normal),
        Spacer(1, 6 * mm),
        _facts_table(document, normal),
        Spacer(1, 6 * mm),
        _lines_table(document, normal, right),
    ]
    if document.payments:
        story += [
            Spacer(1, 5 * mm),
            Paragraph("Payments", subheading),
            _payments_table(document, normal, right),
        ]
    if document.bank_account is not None and document.amount_due > 0:
        story += [Spacer(1, 5 * mm), Paragraph("Pay by bank transfer", subheading)]
        story += _bank_paragraphs(document, normal)
    for note in document.notes:
        story += [Spacer(1, 3 * mm), Paragraph(_text(note), small)]
    pdf.build(story)
    return buffer.getvalue()


def _party_block(title: str, party: Party, style: ParagraphStyle) -> Paragraph:
    lines = [f"<b>{_text(title)}</b>", _text(party.name)]
    lines += [_text(line) for line in party.address_lines if line]
    if party.tax_id:
        lines.append(_text(f"Tax ID: {party.tax_id}"))
    if party.email:
        lines.append(_text(party.email))
    return Paragraph("<br/>".join(lines), style)


def _parties_table(document: InvoiceDocument, style: ParagraphStyle) -> Table:
    table = Table(
        [
            [
                _party_block("From", document.seller, style),
                _party_block("Bill to", document.customer, style),
            ]
        ],
        colWidths=["50%", "50%"],
    )
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _facts_table(document: InvoiceDocument, style: ParagraphStyle) -> Table:
    rows = [
        ["Invoice number", document.number],
        ["Status", document.status_label],
        ["Issued", document.issued_on.isoformat()],
        ["Due", document.due_on.isoformat()],
    ]
    if document.period is not None:
        start, end = document.period
        rows.append(["Service period", f"{start.isoformat()} to {end.isoformat()}"])
    table = Table(
        [[Paragraph(f"<b>{_text(k)}</b>", style), Paragraph(_text(v), style)] for k, v in rows],
        colWidths=[40 * mm, None],
    )
    table.setStyle(TableStyle([("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    return table


def _lines_table(document: InvoiceDocument, style: ParagraphStyle, right: ParagraphStyle) -> Table:
    currency = document.currency
    rows: list[list[Flowable | str]] = [
        [
            Paragraph("<b>Description</b>", style),
            Paragraph("<b>Qty</b>", right),
            Paragraph("<b>Unit price</b>", right),
            Paragraph("<b>Amount</b>", right),
        ]
    ]
    for line in document.lines:
        rows.append(
            [
                Paragraph(_text(line.description), style),
                Paragraph(str(line.quantity), right),
                Paragraph(_money(line.unit_amount, currency), right),
                Paragraph(_money(line.amount, currency), right),
            ]
        )
    totals = [("Subtotal", document.subtotal)]
    if document.discount_total:
        totals.append(("Discount", -document.discount_total))
    if document.credit_applied:
        totals.append(("Credit applied", -document.credit_applied))
    totals += [("Total", document.total), ("Amount due", document.amount_due)]
    first_total = len(rows)
    for label, amount in totals:
        rows.append(
            [
                "",
                "",
                Paragraph(f"<b>{_text(label)}</b>", right),
                Paragraph(f"<b>{_money(amount, currency)}</b>", right),
            ]
        )
    table = Table(rows, colWidths=[None, 15 * mm, 35 * mm, 35 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEABOVE", (2, first_total), (-1, first_total), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _payments_table(
    document: InvoiceDocument, style: ParagraphStyle, right: ParagraphStyle
) -> Table:
    rows: list[list[Flowable | str]] = [
        [
            Paragraph("<b>Date</b>", style),
            Paragraph("<b>Method</b>", style),
            Paragraph("<b>Reference</b>", style),
            Paragraph("<b>Amount</b>", right),
        ]
    ]
    for payment in document.payments:
        rows.append(
            [
                Paragraph(payment.date.isoformat(), style),
                Paragraph(_text(payment.method), style),
                Paragraph(_text(payment.reference), style),
                Paragraph(_money(payment.amount, document.currency), right),
            ]
        )
    table = Table(rows, colWidths=[28 * mm, 35 * mm, None, 35 * mm])
    table.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black)]))
    return table


def _bank_paragraphs(document: InvoiceDocument, style: ParagraphStyle) -> list[Paragraph]:
    account = document.bank_account
    if account is None:
        return []
    rows = [
        ("Bank", account.bank_name),
        ("Account name", account.account_name),
        ("Account number", account.account_number),
        ("SWIFT/BIC", account.swift),
        ("IBAN", account.iban),
        ("Amount", _money(document.amount_due, document.currency)),
        ("Reference", document.number),
    ]
    return [Paragraph(f"<b>{_text(k)}:</b> {_text(v)}", style) for k, v in rows if v]
