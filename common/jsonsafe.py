"""Parsing untrusted JSON without letting its nesting exhaust the stack.

`json.loads` recurses once per array/object level and raises RecursionError (not ValueError)
on a body like `[[[[...]]]]` 100,000 deep, which callers catching ValueError turn into a 500.
The depth is measured first with regular expressions and a running sum (no recursion, linear
time), so such a body is refused before the parser sees it.
"""

import json
import re
from itertools import accumulate
from typing import Any

# Far above anything Stripe, WhatsApp or our API clients send (Stripe events are ~6 deep).
MAX_DEPTH = 64

# A JSON string, escapes included ("unrolled" form: no backtracking per character).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONTooDeep(ValueError):
    """Nested deeper than allowed. A ValueError, so "not valid JSON" handlers catch it too."""


def json_depth(text: str) -> int:
    """How deeply arrays/objects nest in `text` (brackets inside strings do not count).

    Exact for any text `json.loads` accepts; for invalid JSON it is only an estimate, which is
    fine: that text is refused by the parser anyway.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate((1 if c in "[{" else -1 for c in brackets), initial=0))


def json_loads_bounded(text: str | bytes, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """`json.loads`, refusing (JSONTooDeep) nesting beyond `max_depth`.

    Raises ValueError (JSONDecodeError, UnicodeDecodeError or JSONTooDeep) for anything that is
    not acceptable JSON; never RecursionError.
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    # Cheap first: a text with few brackets cannot nest deeply.
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.")
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # a caller's object_hook or a tiny stack; still bad input
        raise JSONTooDeep("JSON nested too deeply to parse.") from None
