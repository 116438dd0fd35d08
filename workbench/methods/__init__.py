"""Methods: one folder (or module) per method; none of them knows about notebooks."""
