"""``CliError``: a user error of any subcommand, printed as one line with exit status 2 (no traceback).

Its own module so that subcommands raise it without importing ``router.cli.main``, which imports them."""


class CliError(Exception):
    """A user error: printed as one line, exit status 2, no traceback."""
