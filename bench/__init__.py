"""gradfit's benchmark suite: gradfit and its peers timed in the same process (see README.md)."""
