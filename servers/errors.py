"""The error codes the servers app raises (ApplicationError.code), in one place.

Clients and tests match on these strings (the API renders them as `code`, checkout shows the
field error), so the values never change; a StrEnum compares and serializes as its plain string.
"""

from enum import StrEnum


class ServersErrorCode(StrEnum):
    # Capacity (servers.capacity): no node of the location has room for the plan / no node of
    # the location takes new orders at all.
    SOLD_OUT = "sold_out"
    NOT_AVAILABLE = "not_available"
