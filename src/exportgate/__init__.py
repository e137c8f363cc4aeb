"""exportgate: enforce export-control directives on frontier-model APIs."""

__version__ = "0.1.0.dev0"
