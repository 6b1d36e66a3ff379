"""Pages that are generated, save for one hand-written block: what the run shows.

A page `results/<name>.md` is rewritten whole by the command that generates it (the
report, the sensitivity study, the peer study), except the text between
`<!-- findings:begin -->` and `<!-- findings:end -->`, which a person writes after
reading the run and which every rewrite keeps.
"""

import pathlib

from tfovp.files import atomic_write_text, locked

BEGIN, END = "<!-- findings:begin -->", "<!-- findings:end -->"


def findings_of(path):
    """The hand-written block of page `path` (without its markers); "" if none."""
    path = pathlib.Path(path)
    if not path.is_file():
        return ""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return ""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def compose(head, kept, body):
    """A page's text: `head` (title and provenance), the findings block holding `kept`,
    then `body` (the generated tables)."""
    block = f"{BEGIN}\n{kept}\n{END}" if kept else f"{BEGIN}\n{END}"
    return f"{head.rstrip()}\n\n{block}\n\n{body.lstrip()}"


def write_page(path, head, body):
    """Write page `path` with its findings block as it stands (`compose`)."""
    with locked(path):
        atomic_write_text(path, compose(head, findings_of(path), body))
