"""The certificate toolbox: one immutable ``Cert`` value, loading any format, OpenSSL hashes.

Stable names others import: ``Cert``, ``load_certs``, ``subject_hash``.
"""

from trustwall.certs.load import load_certs
from trustwall.certs.model import Cert, subject_hash

__all__ = ["Cert", "load_certs", "subject_hash"]
