"""Field checks shared by wire models: they raise pydantic errors carrying netfence's message,
so one validation pass reports every problem of a document, structural or not."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from netfence.errors import show

#: The error type netfence's own checks raise; `message` is the text after the field path.
ERROR_TYPE = "netfence"

# IANA_SVC_NAME as the API server checks it: at most 15 characters of lowercase letters, digits
# and '-', at least one letter, no '-' at either end and no '--'.
_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


def fail(message: str, field: str | None = None) -> PydanticCustomError:
    """An error for the field being validated, or for `field` inside it (a model check)."""
    return PydanticCustomError(ERROR_TYPE, "{message}", {"message": message, "field": field})


#: (field path relative to the model being checked, or None for the model; message)
Problem = tuple[str | None, str]


def raise_all(title: str, problems: Sequence[Problem]) -> None:
    """Report every problem of a model check at once (each becomes one message)."""
    if problems:
        details = [InitErrorDetails(type=fail(message, field), loc=(), input=None) for field, message in problems]
        raise ValidationError.from_exception_data(title, details)


def is_port_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def is_port_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(_SVC_NAME.fullmatch(value))
        and "--" not in value
        and any(c.isalpha() for c in value)
    )


def _port_number(value: Any) -> int:
    if not is_port_number(value):
        raise fail(f"expected a port number 1-65535, got {show(value)}")
    return int(value)


def _port_name(value: Any) -> str:
    if not is_port_name(value):
        raise fail(f"expected a port name (IANA service name: at most 15 lowercase letters, digits and '-'), got {show(value)}")
    return str(value)


def _port_or_name(value: Any) -> int | str:
    if not (is_port_number(value) or is_port_name(value)):
        raise fail(f"expected a port number 1-65535 or a port name (IANA service name), got {show(value)}")
    return value  # type: ignore[no-any-return]


def _protocol(value: Any) -> str:
    if value not in ("TCP", "UDP", "SCTP"):
        raise fail(f"expected TCP, UDP or SCTP, got {show(value)}")
    return str(value)


def _defaulted_protocol(value: Any) -> str:
    # Services and container ports: an empty protocol is defaulted to TCP, as an absent one.
    return "TCP" if value in ("", None) else _protocol(value)


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPv4Address | IPv6Address:
    """`ip_address`, remembered for the texts read last: a pod's address is read four or five
    times while it loads (podIP, podIPs, their checks, the conversion), 10,000 pods' 0.2 s."""
    return ip_address(text)


def is_ip(value: object) -> bool:
    """An address as Go's net.ParseIP reads it: text, no IPv6 zone (`%eth0`). Python's
    ip_address also takes integers and zones, which the API server rejects."""
    if not isinstance(value, str) or "%" in value:
        return False
    try:
        parse_ip(value)
    except ValueError:
        return False
    return True


def ip_family(text: str) -> int:
    """4 or 6 for an address `is_ip` accepts, as Go's net.IP sees it: an IPv4-mapped IPv6
    address (::ffff:10.0.0.1) is IPv4, so the API server's one-address-per-family rules count
    it as one."""
    address = parse_ip(text)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return 4
    return address.version


def not_one_per_family(texts: Sequence[str]) -> bool:
    """More than two addresses, or two of one family (netutils.IsDualStackIPStrings failing)."""
    return len(texts) > 2 or (len(texts) == 2 and ip_family(texts[0]) == ip_family(texts[1]))


def _link_local_multicast(address: IPv4Address | IPv6Address) -> bool:
    # Go's IsLinkLocalMulticast: 224.0.0.0/24, or IPv6 multicast of link-local scope (ffX2::).
    if isinstance(address, IPv4Address):
        return address.packed[:3] == bytes((224, 0, 0))
    return address.packed[0] == 0xFF and address.packed[1] & 0x0F == 0x02


def special_ip(text: str) -> str | None:
    """What the API server's ValidateNonSpecialIP expects instead of `text` (a valid address),
    or None: externalIPs may not be unspecified, loopback or link-local addresses."""
    address = parse_ip(text)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "a specified address (not 0.0.0.0 or ::)"
    if address.is_loopback:
        return "an address outside the loopback range (127.0.0.0/8, ::1/128)"
    if address.is_link_local:
        return "an address outside the link-local range (169.254.0.0/16, fe80::/10)"
    if _link_local_multicast(address):
        return "an address outside the link-local multicast range (224.0.0.0/24, ff02::/16)"
    return None


def is_cidr(value: object, *, bare_ip: bool = False) -> bool:
    """`address/prefix-length` as Go's net.ParseCIDR reads it (host bits allowed); with
    `bare_ip`, an address alone too (Calico's ParseCIDROrIP). Not Python's extras: integers,
    netmasks (`10.0.0.0/255.0.0.0`), zones."""
    if not isinstance(value, str):
        return False
    address, slash, length = value.partition("/")
    if not slash:
        return bare_ip and is_ip(address)
    if not (length.isdigit() and length.isascii() and len(length) <= 3) or not is_ip(address):
        return False
    try:
        ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _ip(value: Any) -> str:
    if not is_ip(value):
        raise fail(f"expected an IPv4 or IPv6 address, got {show(value)}")
    return str(value)


def _cidr(value: Any) -> str:
    if not is_cidr(value):
        raise fail(f"expected a CIDR such as 10.0.0.0/16 or fd00::/64, got {show(value)}")
    return str(value)


def _cidr_or_ip(value: Any) -> str:
    # The message leaves the bare address out: CIDRs are what users write.
    if not is_cidr(value, bare_ip=True):
        raise fail(f"expected a CIDR such as 10.0.0.0/16 or fd00::/64, got {show(value)}")
    return str(value)


# --- names and labels, as k8s.io/apimachinery/pkg/util/validation checks them ------------------

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL = re.compile(_LABEL)
_DNS_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
#: Calico: a NetworkPolicy is named `name` or `tier.name`, or (a Kubernetes NetworkPolicy seen
#: through Calico's API) `knp.default.<name>`; a GlobalNetworkPolicy `name` or `tier.name`.
_CALICO_POLICY = re.compile(rf"{_LABEL}(\.{_LABEL})?|(knp|ossg)\.default\.{_LABEL}(\.{_LABEL})*")
_CALICO_GLOBAL_POLICY = re.compile(rf"({_LABEL}\.)?{_LABEL}")

DNS_LABEL_RULE = "lowercase letters, digits and '-', starting and ending with a letter or digit"
DNS_SUBDOMAIN_RULE = "lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
LABEL_VALUE_RULE = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
LABEL_KEY = (
    "a label key (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, "
    "after an optional DNS subdomain and '/')"
)
LABEL_VALUE = f"a label value (empty, or at most 63 {LABEL_VALUE_RULE})"


def is_dns_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def is_dns_subdomain(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 253 and _DNS_SUBDOMAIN.fullmatch(value) is not None


def is_label_key(value: object) -> bool:
    """IsQualifiedName: `name` or `prefix/name`, the prefix a DNS subdomain."""
    if not isinstance(value, str):
        return False
    prefix, slash, name = value.rpartition("/")
    if slash and not is_dns_subdomain(prefix):
        return False
    return len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def is_label_value(value: object) -> bool:
    return isinstance(value, str) and (value == "" or (len(value) <= 63 and _QUALIFIED_NAME.fullmatch(value) is not None))


def _label_key(value: Any) -> str:
    if not is_label_key(value):
        raise fail(f"expected {LABEL_KEY}, got {show(value)}")
    return str(value)


def _label_value(value: Any) -> str:
    if not is_label_value(value):
        raise fail(f"expected {LABEL_VALUE}, got {show(value)}")
    return str(value)


def _name_check(test: Any, expected: str) -> Any:
    def check(value: Any) -> str:
        if not test(value):
            raise fail(f"expected {expected}, got {show(value)}")
        return str(value)

    return check


def _matches(pattern: re.Pattern[str], longest: int) -> Any:
    return lambda value: isinstance(value, str) and len(value) <= longest and pattern.fullmatch(value) is not None


DNS_LABEL = f"a DNS-1123 label (at most 63 {DNS_LABEL_RULE})"
DNS_SUBDOMAIN = f"a DNS-1123 subdomain (at most 253 {DNS_SUBDOMAIN_RULE})"
DNS_1035_LABEL = (
    "a DNS-1035 label (at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit)"
)


def _policy_type(value: Any) -> str:
    if value not in ("Ingress", "Egress"):
        raise fail(f"expected Ingress or Egress, got {show(value)}")
    return str(value)


PolicyType = Annotated[Any, AfterValidator(_policy_type)]
PortNumber = Annotated[Any, AfterValidator(_port_number)]
PortOrName = Annotated[Any, AfterValidator(_port_or_name)]
PortName = Annotated[Any, AfterValidator(_port_name)]
Protocol = Annotated[Any, AfterValidator(_protocol)]
#: A protocol the API server defaults when empty (Service and container ports): "" is TCP.
DefaultedProtocol = Annotated[Any, AfterValidator(_defaulted_protocol)]
IPText = Annotated[Any, AfterValidator(_ip)]
CIDRText = Annotated[Any, AfterValidator(_cidr)]
#: Calico's nets: a CIDR, or an address standing for its /32 (/128).
CIDROrIP = Annotated[Any, AfterValidator(_cidr_or_ip)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
#: Every key and value checked, each problem reported on its own.
LabelMap = dict[LabelKey, LabelValue]


def _namespace(value: Any) -> str:
    # An empty namespace is the default one, as kubectl reads it.
    if value != "" and not is_dns_label(value):
        raise fail(f"expected {DNS_LABEL}, got {show(value)}")
    return str(value)


NamespaceName = Annotated[str, AfterValidator(_namespace)]
DNSLabelName = Annotated[str, AfterValidator(_name_check(is_dns_label, DNS_LABEL))]
DNSSubdomainName = Annotated[str, AfterValidator(_name_check(is_dns_subdomain, DNS_SUBDOMAIN))]
DNS1035Name = Annotated[str, AfterValidator(_name_check(_matches(_DNS_1035_LABEL, 63), DNS_1035_LABEL))]
CalicoPolicyName = Annotated[
    str,
    AfterValidator(
        _name_check(
            _matches(_CALICO_POLICY, 253),
            "a Calico policy name (a DNS-1123 label, or two joined by '.' as in tier.name)",
        )
    ),
]
CalicoGlobalPolicyName = Annotated[
    str,
    AfterValidator(
        _name_check(
            _matches(_CALICO_GLOBAL_POLICY, 253),
            "a Calico policy name (a DNS-1123 label, or two joined by '.' as in tier.name)",
        )
    ),
]

