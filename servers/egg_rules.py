"""Validation of egg variable values with the panel's Laravel rule strings.

The panel validates a server's `environment` against every egg variable's `rules` (e.g.
"required|string|max:20"). We check the same rules before an order is placed so the customer
sees the error on the form, not as a failed provisioning later. Rules we do not know are left
for the panel to enforce.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VariableRule:
    env_variable: str
    name: str
    rules: str
    default_value: str = ""
    user_editable: bool = True
    user_viewable: bool = True
    # The egg author's explanation (shown as help on the order form); not used to validate.
    description: str = ""


class _VariableLike(Protocol):
    env_variable: str
    name: str
    rules: str
    default_value: str
    user_editable: bool
    user_viewable: bool


def variable_rules_from(variables: Iterable[_VariableLike]) -> list[VariableRule]:
    """Rule objects from egg variables, mirrored rows and panel answers alike (one place)."""
    return [
        VariableRule(
            env_variable=v.env_variable,
            name=v.name,
            rules=v.rules or "",
            default_value=v.default_value or "",
            user_editable=v.user_editable,
            user_viewable=v.user_viewable,
            description=getattr(v, "description", "") or "",
        )
        for v in variables
    ]


def parse_rules(rules: str) -> list[tuple[str, str]]:
    """(rule name, argument) pairs of a Laravel rule string, as validate_value reads them."""
    return _split_rules(rules)


def _split_rules(rules: str) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    # A regex may contain "|": take "regex:/.../" whole before splitting the rest.
    remaining = rules
    while remaining:
        match = re.match(r"(regex|not_regex):(/.*?/[a-z]*)(\||$)", remaining)
        if match:
            parts.append((match.group(1), match.group(2)))
            remaining = remaining[match.end() :]
            continue
        head, _, remaining = remaining.partition("|")
        name, _, arg = head.partition(":")
        if name:
            parts.append((name.strip(), arg.strip()))
    return parts


def _php_regex(pattern: str) -> re.Pattern[str] | None:
    match = re.fullmatch(r"/(.*)/([a-z]*)", pattern, flags=re.DOTALL)
    if not match:
        return None
    flags = re.IGNORECASE if "i" in match.group(2) else 0
    try:
        return re.compile(match.group(1), flags)
    except re.error:
        return None


def _is_numeric(value: str) -> bool:
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value.strip()) is not None


def validate_value(value: object, rule: VariableRule) -> list[str]:
    """Error messages (empty when valid), worded like the panel's."""
    label = f"The {rule.name} variable field"
    rules = _split_rules(rule.rules)
    names = {name for name, _ in rules}
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if "required" in names:
            return [f"{label} is required."]
        return []
    if not isinstance(value, str):
        return [f"{label} must be a string."]
    numeric = bool(names & {"numeric", "integer"})
    errors: list[str] = []
    for name, arg in rules:
        if name == "string":
            continue
        if name == "integer" and not re.fullmatch(r"[+-]?\d+", value.strip()):
            errors.append(f"{label} must be an integer.")
        elif name == "numeric" and not _is_numeric(value):
            errors.append(f"{label} must be a number.")
        elif name == "boolean" and value not in {"0", "1"}:  # as the panel: "true" fails
            errors.append(f"{label} must be true or false.")
        elif name in {"max", "min", "between", "size"} and arg:
            errors.extend(_check_size(value, name, arg, numeric=numeric, label=label))
        elif name == "in" and value not in [a.strip() for a in arg.split(",")]:
            errors.append(f"The selected {rule.name} is invalid.")
        elif name == "regex":
            compiled = _php_regex(arg)
            if compiled is not None and not compiled.search(value):
                errors.append(f"{label} format is invalid.")
        elif name == "alpha_num" and not re.fullmatch(r"[A-Za-z0-9]+", value):
            errors.append(f"{label} must only contain letters and numbers.")
        elif name == "alpha_dash" and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            errors.append(f"{label} must only contain letters, numbers, dashes and underscores.")
        elif name == "url" and not re.match(r"^https?://\S+$", value):
            errors.append(f"{label} must be a valid URL.")
    return errors


def _check_size(value: str, name: str, arg: str, *, numeric: bool, label: str) -> list[str]:
    try:
        bounds = [float(a) for a in arg.split(",")]
    except ValueError:
        return []
    if numeric:
        if not _is_numeric(value):
            return []
        measure, unit = float(value), ""
    else:
        measure, unit = float(len(value)), " characters"
    low, high = {
        "max": (None, bounds[0]),
        "min": (bounds[0], None),
        "size": (bounds[0], bounds[0]),
    }.get(name, (bounds[0], bounds[-1]))
    fmt = lambda n: f"{n:g}"  # noqa: E731
    if low is not None and measure < low:
        return [f"{label} must be at least {fmt(low)}{unit}."]
    if high is not None and measure > high:
        return [f"{label} must not be greater than {fmt(high)}{unit}."]
    return []


def build_environment(
    rules: Iterable[VariableRule],
    *,
    plan_values: Mapping[str, str],
    customer_values: Mapping[str, object],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Egg defaults <- plan values <- customer values, validated against every variable.

    Returns (environment, errors by env variable). Customers may only set editable variables.
    """
    rules = list(rules)
    known = {rule.env_variable: rule for rule in rules}
    errors: dict[str, list[str]] = {}
    for key in customer_values:
        rule = known.get(key)
        if rule is None:
            errors.setdefault(key, []).append(f"{key} is not a variable of this server type.")
        elif not (rule.user_editable and rule.user_viewable):
            errors.setdefault(key, []).append(f"{rule.name} cannot be changed.")
    environment: dict[str, str] = {}
    for rule in rules:
        value: object = rule.default_value
        if rule.env_variable in plan_values:
            value = plan_values[rule.env_variable]
        if rule.env_variable in customer_values and rule.env_variable not in errors:
            value = customer_values[rule.env_variable]
        problems = validate_value(value, rule)
        if problems:
            errors.setdefault(rule.env_variable, []).extend(problems)
        environment[rule.env_variable] = "" if value is None else str(value)
    return environment, errors
