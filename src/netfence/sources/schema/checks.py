"""Field checks shared by wire models: they raise pydantic errors carrying netfence's message,
so one validation pass reports every problem of a document, structural or not."""

from __future__ import annotations

import re
from ipaddress import ip_address, ip_network
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from netfence.errors import show

#: The error type netfence's own checks raise; `message` is the text after the field path.
ERROR_TYPE = "netfence"

# IANA_SVC_NAME as the API server checks it: at most 15 characters of lowercase letters, digits
# and '-', at least one letter, no '-' at either end and no '--'.
_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


def fail(message: str, field: str | None = None) -> PydanticCustomError:
    """An error for the field being validated, or for `field` inside it (a model check)."""
    return PydanticCustomError(ERROR_TYPE, "{message}", {"message": message, "field": field})


def is_port_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def is_port_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(_SVC_NAME.match(value))
        and "--" not in value
        and any(c.isalpha() for c in value)
    )


def _port_number(value: Any) -> int:
    if not is_port_number(value):
        raise fail(f"expected a port number 1-65535, got {show(value)}")
    return int(value)


def _port_or_name(value: Any) -> int | str:
    if not (is_port_number(value) or is_port_name(value)):
        raise fail(f"expected a port number 1-65535 or a port name (IANA service name), got {show(value)}")
    return value  # type: ignore[no-any-return]


def _protocol(value: Any) -> str:
    if value not in ("TCP", "UDP", "SCTP"):
        raise fail(f"expected TCP, UDP or SCTP, got {show(value)}")
    return str(value)


def _ip(value: Any) -> str:
    try:
        ip_address(value)
    except (ValueError, TypeError):
        raise fail(f"expected an IPv4 or IPv6 address, got {show(value)}") from None
    return str(value)


def _cidr(value: Any) -> str:
    try:
        ip_network(value, strict=False)
    except (ValueError, TypeError):
        raise fail(f"expected a CIDR such as 10.0.0.0/16 or fd00::/64, got {show(value)}") from None
    return str(value)


def _policy_type(value: Any) -> str:
    if value not in ("Ingress", "Egress"):
        raise fail(f"expected Ingress or Egress, got {show(value)}")
    return str(value)


PolicyType = Annotated[Any, AfterValidator(_policy_type)]
PortNumber = Annotated[Any, AfterValidator(_port_number)]
PortOrName = Annotated[Any, AfterValidator(_port_or_name)]
Protocol = Annotated[Any, AfterValidator(_protocol)]
IPText = Annotated[Any, AfterValidator(_ip)]
CIDRText = Annotated[Any, AfterValidator(_cidr)]

