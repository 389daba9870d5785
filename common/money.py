"""Money: Decimal amounts with their currency. Minor units only at the payment-provider edge."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# Exponents of currencies that are not 2-decimal, as Stripe counts minor units (its
# zero-decimal list). IDR is 2-decimal there: Rp 50,000 is sent as 5000000.
_ZERO_DECIMAL = {
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "JPY",
    "KMF",
    "KRW",
    "MGA",
    "PYG",
    "RWF",
    "UGX",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
}
_THREE_DECIMAL = {"BHD", "JOD", "KWD", "OMR", "TND"}

SUPPORTED_CURRENCIES = ("USD", "EUR", "GBP", "IDR", "SGD", "AUD", "CAD")

# How amounts are stored (model and API decimal fields): twelve digits before the point and the
# two after it that every supported currency has (all have exponent 2 above). A three-decimal
# currency would need wider columns, and a migration, before it is sold.
MONEY_MAX_DIGITS = 14
MONEY_DECIMAL_PLACES = 2


def currency_exponent(currency: str) -> int:
    code = currency.upper()
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round to the currency's smallest unit, half up (the one rounding rule of the portal)."""
    if isinstance(amount, float):
        raise TypeError("Money is never a float; pass Decimal, int or str.")
    exponent = currency_exponent(currency)
    return Decimal(amount).quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Integer amount for payment providers (cents for USD, rupiah for IDR)."""
    return int(quantize(amount, currency).scaleb(currency_exponent(currency)))


def from_minor_units(minor: int, currency: str) -> Decimal:
    return quantize(Decimal(minor).scaleb(-currency_exponent(currency)), currency)


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", self.currency.upper())
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))

    def __add__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise ValueError(f"Cannot combine {self.currency} with {other.currency}.")

    def __str__(self) -> str:
        return f"{self.amount:,} {self.currency}"
