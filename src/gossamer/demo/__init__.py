"""`gossamer demo`: a small mesh on this machine (control plane, three services, load)."""
