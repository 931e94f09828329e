"""Trust stores: one module per kind behind one interface (base.TrustStore), found by the
registry. Every write goes through a journal Transaction.

Public API: ``detect_stores``, ``install``, ``remove``, ``list_certs``, ``store_infos``.
"""
