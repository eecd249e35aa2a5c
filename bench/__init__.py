"""gossamer's benchmark suite: `python -m bench [--quick] [--only dataplane|control]`."""
