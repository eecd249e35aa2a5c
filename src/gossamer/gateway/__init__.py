"""The API gateway at the mesh's edge, built from the sidecar's parts (see runtime.py)."""
