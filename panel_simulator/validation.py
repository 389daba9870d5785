"""A small re-implementation of the parts of Laravel's validator the panel's requests use.

It reproduces what a client can observe: which rules run (implicit rules, ``sometimes``,
``nullable``, ``bail``, stop-after-failed-implicit-rule), PHP's type tests, the size semantics
of min/max/between, wildcard expansion, the panel's language lines (``resources/lang/en/
validation.php``) and attribute naming (``Str::snake`` then ``_`` -> space), and the panel's
422 element shape (one element per message, ``meta.source_field`` and ``meta.rule``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MISSING: Any = object()

IMPLICIT_RULES = frozenset(
    {"required", "present", "required_with", "required_without", "filled", "accepted"}
)
NUMERIC_RULES = frozenset({"numeric", "integer"})

MESSAGES: dict[str, str | dict[str, str]] = {
    "array": "The :attribute must be an array.",
    "between": {
        "numeric": "The :attribute must be between :min and :max.",
        "string": "The :attribute must be between :min and :max characters.",
        "array": "The :attribute must have between :min and :max items.",
    },
    "boolean": "The :attribute field must be true or false.",
    "email": "The :attribute must be a valid email address.",
    "exists": "The selected :attribute is invalid.",
    "filled": "The :attribute field is required.",
    "in": "The selected :attribute is invalid.",
    "integer": "The :attribute must be an integer.",
    "max": {
        "numeric": "The :attribute may not be greater than :max.",
        "string": "The :attribute may not be greater than :max characters.",
        "array": "The :attribute may not have more than :max items.",
    },
    "min": {
        "numeric": "The :attribute must be at least :min.",
        "string": "The :attribute must be at least :min characters.",
        "array": "The :attribute must have at least :min items.",
    },
    "numeric": "The :attribute must be a number.",
    "present": "The :attribute field must be present.",
    "regex": "The :attribute format is invalid.",
    "required": "The :attribute field is required.",
    "required_with": "The :attribute field is required when :values is present.",
    "required_without": "The :attribute field is required when :values is not present.",
    "size": {
        "numeric": "The :attribute must be :size.",
        "string": "The :attribute must be :size characters.",
        "array": "The :attribute must contain :size items.",
    },
    "string": "The :attribute must be a string.",
    "unique": "The :attribute has already been taken.",
}

# app/Rules/Username.php: the message really has a newline and 16 spaces in it.
USERNAME_MESSAGE = (
    "The :attribute must start and end with alpha-numeric characters and\n"
    "                contain only letters, numbers, dashes, underscores, and periods."
)
USERNAME_RE = re.compile(r"^[a-z0-9]([\w\.-]+)[a-z0-9]$", re.ASCII)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class RuleFailure:
    source_field: str
    rule: str
    detail: str

    def to_error(self) -> dict[str, Any]:
        return {
            "code": "ValidationException",
            "status": "422",
            "detail": self.detail,
            "meta": {"source_field": self.source_field, "rule": self.rule},
        }


class ValidationFailed(Exception):
    def __init__(self, failures: list[RuleFailure]) -> None:
        super().__init__("; ".join(f.detail for f in failures))
        self.failures = failures


@dataclass(frozen=True)
class Custom:
    """A rule object: ``check(value) -> bool``; ``name`` is what ``meta.rule`` shows."""

    name: str
    check: Callable[[Any], bool]
    message: str

    @staticmethod
    def unique(check: Callable[[Any], bool]) -> Custom:
        return Custom("unique", check, MESSAGES["unique"])  # type: ignore[arg-type]

    @staticmethod
    def exists(check: Callable[[Any], bool]) -> Custom:
        return Custom("exists", check, MESSAGES["exists"])  # type: ignore[arg-type]


Rule = str | Custom


# --------------------------------------------------------------------------- PHP semantics

_NUMERIC_STRING = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def is_numeric(value: Any) -> bool:
    """PHP is_numeric."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and bool(_NUMERIC_STRING.match(value))


def to_number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float(str(value).strip())


def php_string(value: Any) -> str:
    """PHP (string) cast of a JSON scalar."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def is_int_like(value: Any) -> bool:
    """filter_var($value, FILTER_VALIDATE_INT) !== false."""
    if isinstance(value, bool):
        return value is True  # true casts to "1"; false to "" (invalid)
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):
        return bool(re.fullmatch(r"\s*[+-]?(0|[1-9]\d*)\s*", value))
    return False


def is_php_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int) and value in (0, 1):
        return True
    return value in ("0", "1")


def php_truthy(value: Any) -> bool:
    if value is None or value is MISSING:
        return False
    if isinstance(value, str):
        return value not in ("", "0")
    if isinstance(value, list | dict):
        return len(value) > 0
    return bool(value)


def php_bool(value: Any) -> bool:
    """filter_var($value, FILTER_VALIDATE_BOOLEAN) as used by $request->boolean()."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return False


def to_db_int(value: Any) -> int:
    """What MySQL stores in an INT column for a validated numeric value (rounds half up)."""
    try:
        return int(Decimal(str(value).strip()).to_integral_value(rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        return 0


def php_regex(pattern: str) -> re.Pattern[str]:
    """Compile a PHP /.../flags regex."""
    delimiter = pattern[0]
    end = pattern.rfind(delimiter)
    body, flags_text = pattern[1:end], pattern[end + 1 :]
    flags = 0 if "u" in flags_text else re.ASCII
    if "i" in flags_text:
        flags |= re.IGNORECASE
    if "s" in flags_text:
        flags |= re.DOTALL
    if "m" in flags_text:
        flags |= re.MULTILINE
    return re.compile(body, flags)


def snake(value: str) -> str:
    """Laravel Str::snake (ucwords, drop spaces, ``_`` before capitals, lower-case)."""
    if re.fullmatch(r"[a-z]+", value):
        return value
    value = re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), value)
    value = re.sub(r"\s+", "", value)
    return re.sub(r"(.)(?=[A-Z])", r"\1_", value).lower()


# --------------------------------------------------------------------------- data access


def get_path(data: Any, path: str) -> Any:
    current = data
    for segment in path.split("."):
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return MISSING
    return current


def _expand(pattern: str, data: Any) -> list[str]:
    if "*" not in pattern:
        return [pattern]
    head, _, tail = pattern.partition(".*")
    parent = get_path(data, head)
    if isinstance(parent, list):
        keys = [str(index) for index in range(len(parent))]
    elif isinstance(parent, dict):
        keys = [str(key) for key in parent]
    else:
        return []
    result = []
    for key in keys:
        result.extend(_expand(f"{head}.{key}{tail}", data))
    return result


def _parse(rule: str) -> tuple[str, list[str]]:
    name, _, rest = rule.partition(":")
    name = name.strip().lower()
    if name == "int":
        name = "integer"
    if name == "bool":
        name = "boolean"
    if not rest:
        return name, []
    if name in ("regex", "not_regex"):
        return name, [rest]
    return name, rest.split(",")


# --------------------------------------------------------------------------- the validator


class Validator:
    def __init__(
        self,
        data: Mapping[str, Any],
        rules: Mapping[str, list[Rule] | str],
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.data = data
        self.rules = {
            key: (value.split("|") if isinstance(value, str) else list(value))
            for key, value in rules.items()
        }
        self.attributes = dict(attributes or {})
        self.failures: list[RuleFailure] = []

    # ---- naming

    def display(self, attribute: str, pattern: str) -> str:
        if attribute in self.attributes:
            return self.attributes[attribute]
        if pattern in self.attributes:
            return self.attributes[pattern]
        return snake(attribute).replace("_", " ")

    # ---- driver

    def validate(self) -> list[RuleFailure]:
        for pattern, rules in self.rules.items():
            names = {_parse(rule)[0] for rule in rules if isinstance(rule, str)}
            for attribute in _expand(pattern, self.data):
                self._validate_attribute(attribute, pattern, rules, names)
        return self.failures

    def _validate_attribute(
        self, attribute: str, pattern: str, rules: list[Rule], names: set[str]
    ) -> None:
        value = get_path(self.data, attribute)
        if "sometimes" in names and value is MISSING:
            return
        failed_implicit = False
        for rule in rules:
            if isinstance(rule, Custom):
                name, params = rule.name, []
            else:
                if not rule:
                    continue
                name, params = _parse(rule)
                if name in ("sometimes", "nullable", "bail"):
                    continue
            implicit = isinstance(rule, str) and name in IMPLICIT_RULES
            # isValidatable: absent/blank values only see implicit rules; nullable skips null.
            if isinstance(value, str) and value.strip() == "":
                if not implicit:
                    continue
            elif value is MISSING and not implicit:
                continue
            if "nullable" in names and value is None and not implicit:
                continue
            if isinstance(rule, Custom):
                passed = bool(rule.check(value))
                template = rule.message
            else:
                passed = self._passes(name, params, attribute, value, names)
                template = self._template(name, names)
            if not passed:
                self.failures.append(
                    RuleFailure(
                        source_field=attribute,
                        rule=name,
                        detail=self._message(template, name, params, attribute, pattern),
                    )
                )
                failed_implicit = failed_implicit or implicit
                if "bail" in names:
                    return
                if failed_implicit:
                    return

    def _template(self, name: str, names: set[str]) -> str:
        template = MESSAGES.get(name, f"The :attribute is invalid ({name}).")
        if isinstance(template, dict):
            if names & NUMERIC_RULES:
                return template["numeric"]
            if "array" in names:
                return template["array"]
            return template["string"]
        return template

    def _message(
        self, template: str, name: str, params: list[str], attribute: str, pattern: str
    ) -> str:
        message = template.replace(":attribute", self.display(attribute, pattern))
        if name == "between":
            message = message.replace(":min", params[0]).replace(":max", params[1])
        elif name == "min":
            message = message.replace(":min", params[0])
        elif name == "max":
            message = message.replace(":max", params[0])
        elif name == "size":
            message = message.replace(":size", params[0])
        elif name in ("required_with", "required_without"):
            others = " / ".join(self.display(other, other) for other in params)
            message = message.replace(":values", others)
        return message

    # ---- rules

    def _size(self, value: Any, names: set[str]) -> float:
        if names & NUMERIC_RULES and is_numeric(value):
            return to_number(value)
        if isinstance(value, list | dict):
            return float(len(value))
        return float(len(php_string(value)))

    @staticmethod
    def _required(value: Any) -> bool:
        if value is MISSING or value is None:
            return False
        if isinstance(value, str) and value.strip() == "":
            return False
        return not (isinstance(value, list | dict) and len(value) == 0)

    def _passes(
        self, name: str, params: list[str], attribute: str, value: Any, names: set[str]
    ) -> bool:
        if name in ("required", "filled"):
            return self._required(value)
        if name == "present":
            return value is not MISSING
        if name == "required_with":
            if all(not self._required(get_path(self.data, other)) for other in params):
                return True
            return self._required(value)
        if name == "required_without":
            if any(not self._required(get_path(self.data, other)) for other in params):
                return self._required(value)
            return True
        if name == "string":
            return isinstance(value, str)
        if name == "integer":
            return is_int_like(value)
        if name == "numeric":
            return is_numeric(value)
        if name == "boolean":
            return is_php_boolean(value)
        if name == "array":
            return isinstance(value, list | dict)
        if name == "email":
            return isinstance(value, str) and bool(EMAIL_RE.match(value))
        if name == "regex":
            if not isinstance(value, str) and not is_numeric(value):
                return False
            return bool(php_regex(params[0]).search(php_string(value)))
        if name == "in":
            if isinstance(value, list | dict):
                return False
            return php_string(value) in params
        if name == "between":
            size = self._size(value, names)
            return float(params[0]) <= size <= float(params[1])
        if name == "min":
            return self._size(value, names) >= float(params[0])
        if name == "max":
            return self._size(value, names) <= float(params[0])
        if name == "size":
            return self._size(value, names) == float(params[0])
        if name == "p_username":
            return bool(USERNAME_RE.match(php_string(value).lower()))
        raise ValueError(f"rule {name!r} is not implemented by the simulator")


def validate(
    data: Mapping[str, Any],
    rules: Mapping[str, list[Rule] | str],
    attributes: Mapping[str, str] | None = None,
) -> None:
    """Raise ValidationFailed with the failures in the panel's order, if any."""
    failures = Validator(data, rules, attributes).validate()
    if failures:
        # The panel groups messages by field (in order of the first failure of each field).
        order: dict[str, int] = {}
        for failure in failures:
            order.setdefault(failure.source_field, len(order))
        failures = sorted(failures, key=lambda f: order[f.source_field])
        raise ValidationFailed(failures)


def username_rule() -> Custom:
    return Custom(
        "p_username", lambda v: bool(USERNAME_RE.match(php_string(v).lower())), USERNAME_MESSAGE
    )
