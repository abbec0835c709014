"""The ``planb`` command line: thin wrappers that parse, call the core, and print."""
