"""Which image sources a catalog may make ingest read: the source policy.

A catalog is written by merchants, so every image reference in it is untrusted: without a policy a
row could make the pod read ``file:///etc/passwd``, a cloud metadata endpoint
(``http://169.254.169.254/``), a service on the cluster network, or a bucket the pod's identity can
read. The defaults suit merchant catalogs:

- ``http(s)://`` only to public addresses. The host is resolved and every loopback, link-local,
  private, shared (CGNAT), unspecified, multicast or reserved address is refused; IPv4 addresses
  embedded in IPv6 (``::ffff:a.b.c.d``, NAT64, 6to4) are judged by the IPv4 address. Literal
  addresses are checked before connecting (:meth:`SourcePolicy.refusal`), names when they are
  resolved (:class:`ecom_kfp.ingest.fetch.PolicyResolver`, the resolver of the connection pool), so the connection goes to
  the address that was checked and a second DNS answer cannot point it elsewhere. Redirects are
  followed by the fetcher itself, every hop checked the same way.
- ``gs://`` only for buckets listed in ``--allow-gcs-buckets``.
- Local paths and ``file://`` only with ``--allow-local-files``.

``--allow-private-networks`` and ``--allow-local-files`` exist for tests, the demo and catalogs
the operator wrote; see docs/security.md.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.ingest import sources
from ecom_kfp.ingest.reasons import Reason
from ecom_kfp.settings import setting

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: internal to a provider


def is_public(address: str) -> bool:
    """True when ``address`` (an IPv4 or IPv6 literal) is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast
                or ip.is_reserved or ip in _SHARED or not ip.is_global)


@dataclass(frozen=True)
class SourcePolicy:
    """Which image sources ingest may read (defaults: public http(s) only)."""

    allow_local_files: bool = setting(
        False, help="read local paths and file:// image references (only for catalogs you wrote: a merchant "
                    "catalog could name any file the pod can read)")
    allow_private_networks: bool = setting(
        False, help="fetch http(s) images from loopback, private, link-local and other non-public addresses "
                    "(tests, the demo, an internal image server)")
    allow_gcs_buckets: str = setting(
        "", metavar="BUCKET,...", help="gs:// buckets image references may read from (comma-separated; "
                                       "default none: the pod's identity may read buckets a merchant must not)")

    @property
    def gcs_buckets(self) -> frozenset[str]:
        """The buckets of ``allow_gcs_buckets``."""
        return frozenset(b.strip().removeprefix("gs://").strip("/") for b in self.allow_gcs_buckets.split(",")
                         if b.strip())

    def address_allowed(self, address: str) -> bool:
        """True when a connection to ``address`` may be made."""
        return self.allow_private_networks or is_public(address)

    def refusal(self, source: str) -> tuple[Reason, str] | None:
        """Why ``source`` may not be read, judged before any connection; None when it may be tried.

        Host names of ``http(s)`` sources are checked when they are resolved (:class:`ecom_kfp.ingest.fetch.PolicyResolver`).
        """
        kind = sources.kind(source)
        if kind is None:
            return Reason.BAD_IMAGE_URL, "no http(s), gs:// or local source"
        if kind == sources.LOCAL:
            if not self.allow_local_files:
                return Reason.LOCAL_SOURCE_REFUSED, "local files are not read without --allow-local-files"
            return None
        if kind == sources.GCS:
            bucket = uri.split_gcs(source)[0]
            if bucket not in self.gcs_buckets:
                return Reason.GCS_BUCKET_REFUSED, f"bucket {bucket!r} is not in --allow-gcs-buckets"
            return None
        host = urllib.parse.urlsplit(source).hostname
        if not host:
            return Reason.BAD_IMAGE_URL, "no host"
        try:
            literal = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return None
        if not self.address_allowed(str(literal)):
            return Reason.PRIVATE_ADDRESS_REFUSED, f"{host} is not a public address (--allow-private-networks)"
        return None
