"""Research scripts (not the library): the cross-attention comparison, how the defaults were chosen,
reward stability. Run from the repository root: ``python -m experiments --help``."""
