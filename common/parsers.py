"""DRF parsers for untrusted request bodies."""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from common.jsonsafe import json_loads_bounded


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, refusing bodies nested deeper than common.jsonsafe.MAX_DEPTH.

    DRF catches only ValueError, and `json.load` raises RecursionError on a body nested some
    thousand levels deep: any logged-in user could answer themselves a 500. The depth is
    checked before parsing, without recursion; the body size is bounded by Django
    (DATA_UPLOAD_MAX_MEMORY_SIZE) when DRF reads `request.body`.
    """

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> Any:
        # get_encoding refuses non-text codecs (bz2_codec would inflate a small body).
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except (UnicodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        parse_constant = json.strict_constant if self.strict else None
        try:
            return json_loads_bounded(text, parse_constant=parse_constant)
        except ValueError as exc:  # JSONTooDeep included
            raise ParseError(f"JSON parse error - {exc}") from None
