"""Limits that the command line names in its help, kept in a module that imports nothing (`convlab --help` stays
fast)."""

# Runs one plan may hold unless the caller allows large plans (`--allow-large`): the largest shipped study has a few
# hundred, and a grid that crosses a few long lists reaches millions from a few lines. Counted before expansion.
MAX_RUNS = 20_000
