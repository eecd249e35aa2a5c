"""The control plane: REST API, registry and leases, snapshot compiler, proxy streams."""
