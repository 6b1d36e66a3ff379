"""Where a benchmark's markdown table goes: printed, and appended to `--markdown` if given."""


def publish(table, markdown=None):
    """Print `table` and append it (after a blank line) to the file `markdown`."""
    print(table)
    if markdown:
        with open(markdown, "a") as handle:
            handle.write("\n" + table.rstrip("\n") + "\n")
