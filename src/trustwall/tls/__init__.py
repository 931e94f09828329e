"""Getting out through TLS inspection: probe an endpoint, judge the presented chain per trust
store and per client, detect interception, explain errors, fetch the CA to trust.

Modules: probe (connection + handshake capture), verify (OpenSSL verification against one set
of anchors), clients (which store each client reads), intercept, explain, report (the whole
diagnosis), scan (many endpoints), fetch (``ca fetch``). Nothing is imported here: the CLI
loads only what a command needs.
"""
