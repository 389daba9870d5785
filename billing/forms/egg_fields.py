"""Order-form fields shaped by an egg variable's Laravel rules.

The form only picks a friendly widget and writes readable help; the order service validates
every value with the same rules (servers.egg_rules), so a rule we do not know here still fails
there with the panel's wording.

Widgets, by rule:
- `boolean` -> a checkbox sending exactly "1" (checked) or "0" (unchecked): the values the
  panel's boolean rule accepts as strings. `in:` with two values that read as a pair
  (true/false, 1/0, yes/no, on/off, in any case) -> a checkbox sending those exact values.
- `in:a,b,c` -> a select of those values (plus an empty choice when the rule allows none).
- `integer` / `numeric` -> a number input with min/max from `min`, `max` or `between`.
- a secret -> a password input. A variable is a secret when a word of its env name or its name
  (split on anything that is not a letter or a digit) is one of SECRET_WORDS: token, password,
  passwd, pass, pwd, secret, key, apikey ("ACCESS_TOKEN", "Git Access Token", "RCON_PASSWORD",
  "API_KEY"; not "KEYBOARD" or "MONKEY"). A secret's preset value is never put in the page;
  the customer's own value is re-shown only in their own POST answers (errors, "Change").
- anything else -> a text input (maxlength from `max` when the rule is about a string).

`required` keeps the field required: an emptied required field is an error on the form, never
the default in disguise.
"""

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.translation import gettext as _

from servers.egg_rules import VariableRule, parse_rules

SECRET_WORDS = frozenset({"token", "password", "passwd", "pass", "pwd", "secret", "key", "apikey"})
_BOOLEAN_PAIRS = ({"true", "false"}, {"1", "0"}, {"yes", "no"}, {"on", "off"})
_TRUE_WORDS = {"true", "1", "yes", "on"}
SECRET_MASK = "\u2022" * 8


class Kind:
    TEXT = "text"
    NUMBER = "number"
    CHOICE = "choice"
    BOOLEAN = "boolean"
    SECRET = "secret"


def is_secret(rule: VariableRule) -> bool:
    words = re.split(r"[^a-z0-9]+", f"{rule.env_variable} {rule.name}".lower())
    return any(word in SECRET_WORDS for word in words)


def boolean_values(parts: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(checked value, unchecked value) when the rule describes a yes/no variable."""
    names = dict(parts)
    if "boolean" in names:
        return "1", "0"
    values = _in_values(parts)
    if values is not None and len(values) == 2:
        lowered = {value.lower() for value in values}
        if lowered in _BOOLEAN_PAIRS:
            true_value = next(v for v in values if v.lower() in _TRUE_WORDS)
            false_value = next(v for v in values if v != true_value)
            return true_value, false_value
    return None


def _in_values(parts: list[tuple[str, str]]) -> list[str] | None:
    for name, arg in parts:
        if name == "in":
            return [value.strip() for value in arg.split(",")]
    return None


def _number(text: str) -> str | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return f"{value:g}"


def _bounds(parts: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    low: str | None = None
    high: str | None = None
    for name, arg in parts:
        args = [a.strip() for a in arg.split(",")] if arg else []
        if name == "min" and args:
            low = _number(args[0])
        elif name == "max" and args:
            high = _number(args[0])
        elif name == "between" and len(args) == 2:
            low, high = _number(args[0]), _number(args[1])
        elif name == "size" and args:
            low = high = _number(args[0])
    return low, high


def _describe_regex(pattern: str) -> str:
    """A human sentence for the regexes eggs commonly use; a neutral one otherwise."""
    body = pattern.strip("/")
    ending = re.search(r"\\\.([A-Za-z0-9]+)\)?\$$", body)
    if ending:
        return _("A file name ending in .%(extension)s.") % {"extension": ending.group(1)}
    return _("It must be in the format this server type expects.")


def readable_rule(rule: VariableRule, *, kind: str) -> str:
    """The variable's rule string as sentences a customer can read."""
    parts = parse_rules(rule.rules)
    names = {name for name, _arg in parts}
    sentences = [_("Required.") if "required" in names else _("Optional.")]
    low, high = _bounds(parts)
    if kind == Kind.NUMBER:
        what = _("A whole number") if "integer" in names else _("A number")
        if low is not None and high is not None:
            sentences.append(
                _("%(what)s from %(min)s to %(max)s.")
                % {
                    "what": what,
                    "min": low,
                    "max": high,
                }
            )
        elif low is not None:
            sentences.append(_("%(what)s of at least %(min)s.") % {"what": what, "min": low})
        elif high is not None:
            sentences.append(_("%(what)s of at most %(max)s.") % {"what": what, "max": high})
        else:
            sentences.append(f"{what}.")
    elif kind in (Kind.TEXT, Kind.SECRET):
        if low is not None and high is not None and low == high:
            sentences.append(_("Exactly %(count)s characters.") % {"count": low})
        elif low is not None and high is not None:
            sentences.append(_("%(min)s to %(max)s characters.") % {"min": low, "max": high})
        elif high is not None:
            sentences.append(_("Up to %(max)s characters.") % {"max": high})
        elif low is not None:
            sentences.append(_("At least %(min)s characters.") % {"min": low})
    for name, arg in parts:
        if name == "regex" and kind in (Kind.TEXT, Kind.SECRET):
            sentences.append(_describe_regex(arg))
        elif name == "alpha_num":
            sentences.append(_("Letters and digits only."))
        elif name == "alpha_dash":
            sentences.append(_("Letters, digits, dashes and underscores only."))
        elif name == "url":
            sentences.append(_("A web address starting with http:// or https://."))
    if kind == Kind.SECRET:
        sentences.append(_("Kept private: it is masked on the review page."))
    elif kind in (Kind.TEXT, Kind.NUMBER) and rule.default_value:
        sentences.append(_("Default: %(value)s.") % {"value": rule.default_value})
    return " ".join(sentences)


def help_text(rule: VariableRule, *, kind: str) -> str:
    description = " ".join(rule.description.split())
    readable = readable_rule(rule, kind=kind)
    return f"{description} {readable}" if description else readable


class EggCheckboxInput(forms.CheckboxInput):
    """A checkbox whose two states are the exact strings the variable's rule accepts."""

    def __init__(self, *, true_value: str, false_value: str, attrs: dict | None = None):
        super().__init__(attrs, check_test=lambda value: value == true_value)
        self.true_value = true_value
        self.false_value = false_value

    def format_value(self, value: Any) -> str:
        return self.true_value  # what a ticked box sends

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        if name not in data:  # an unticked box sends nothing
            return self.false_value
        return data.get(name)


class EggBooleanField(forms.ChoiceField):
    def __init__(self, *, true_value: str, false_value: str, **kwargs: Any):
        kwargs["required"] = False  # "unticked" is a value: the HTML required would force a tick
        super().__init__(
            choices=[(true_value, _("Yes")), (false_value, _("No"))],
            widget=EggCheckboxInput(true_value=true_value, false_value=false_value),
            **kwargs,
        )
        self.true_value = true_value
        self.false_value = false_value


@dataclass(frozen=True)
class VariableField:
    rule: VariableRule
    kind: str
    field: forms.Field

    def display(self, value: str) -> str:
        """How the review page shows a chosen value (secrets masked)."""
        if self.kind == Kind.SECRET:
            return SECRET_MASK if value else _("(not set)")
        if self.kind == Kind.BOOLEAN:
            checked = isinstance(self.field, EggBooleanField) and value == self.field.true_value
            return _("Yes") if checked else _("No")
        if value == "":
            return _("(empty)")
        return value


def variable_field(rule: VariableRule, *, initial: str) -> VariableField:
    """The form field for one customer-editable egg variable."""
    parts = parse_rules(rule.rules)
    names = {name for name, _arg in parts}
    required = "required" in names
    label = rule.name or rule.env_variable
    booleans = boolean_values(parts)
    choices = _in_values(parts)
    field: forms.Field
    if is_secret(rule):
        kind = Kind.SECRET
        field = forms.CharField(
            label=label,
            required=required,
            max_length=1024,
            strip=False,
            # No initial: a preset secret never goes into the page. The customer's own value
            # comes back only in the answers to their POSTs (errors, "Change" on the review).
            widget=forms.PasswordInput(render_value=True, attrs={"autocomplete": "off"}),
        )
    elif booleans is not None:
        kind = Kind.BOOLEAN
        field = EggBooleanField(
            label=label, true_value=booleans[0], false_value=booleans[1], initial=initial
        )
    elif choices is not None:
        kind = Kind.CHOICE
        options = [(value, value) for value in choices]
        if not required:
            options.insert(0, ("", _("(none)")))
        field = forms.ChoiceField(label=label, required=required, choices=options, initial=initial)
    elif names & {"integer", "numeric"}:
        kind = Kind.NUMBER
        low, high = _bounds(parts)
        attrs = {"step": "1" if "integer" in names else "any"}
        if low is not None:
            attrs["min"] = low
        if high is not None:
            attrs["max"] = high
        field = forms.CharField(
            label=label, required=required, initial=initial, widget=forms.NumberInput(attrs)
        )
    else:
        kind = Kind.TEXT
        _low, high = _bounds(parts)
        max_length = 1024
        if high is not None and float(high).is_integer() and 0 < float(high) < max_length:
            max_length = int(float(high))
        field = forms.CharField(
            label=label, required=required, initial=initial, max_length=max_length
        )
    field.help_text = help_text(rule, kind=kind)
    return VariableField(rule=rule, kind=kind, field=field)
