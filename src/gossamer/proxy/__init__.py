"""The sidecar data plane: stdlib, uvloop and httptools only (see docs/sidecar-internals.md)."""
