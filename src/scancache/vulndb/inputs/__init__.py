"""Dependency inputs of `scancache audit`: one module per format, each yielding a ParsedInput."""
