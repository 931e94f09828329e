"""The reproducible lab: CA factory, hosts in network namespaces, TLS sites, an intercepting
proxy, sandboxed trust stores, real clients and a kernel oracle for firewall rules."""
