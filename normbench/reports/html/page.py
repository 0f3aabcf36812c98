"""The page shell: which sections these results have, the header with its contents, the document."""

from __future__ import annotations

import datetime as dt

from .. import model
from .. import sections as registry  # bound late: the registry imports this package's section modules
from ..formatting import plural
from ..html_elements import esc, section
from ..loading import Results
from .style import CSS, SCRIPT


def sections(res: Results) -> list[str]:
    """The keys of the sections these results have, in page order (decided in :mod:`..sections`)."""
    return [s.key for s in registry.present(res)]


def _header(res: Results, generated: dt.datetime, found: list) -> str:
    sources = list(res.environments["source"]) if "source" in res.environments else []
    listed = ", ".join(f"<code>{esc(s)}</code>" for s in sources) or "none"
    if len(sources) > 3:  # a `normbench run` writes one file per process: name the runs, fold the files
        runs = ", ".join(f"<code>{esc(r)}</code>" for r in dict.fromkeys(model.run_of(res.environments["run"])))
        listed = f"{runs} <details><summary>the files</summary>{listed}</details>"
    toc = "".join(f'<li><a href="#{s.key}">{esc(s.title)}</a></li>' for s in found) if len(found) > 1 else ""
    nav = f'<nav class="toc" aria-label="Contents"><ol>{toc}</ol></nav>\n' if toc else ""
    return (f"<header><div>\n<h1>normbench report</h1>\n"
            f'<div class="meta">Generated {esc(generated.strftime("%Y-%m-%d %H:%M UTC"))} from '
            f"{plural(len(sources), 'results file')}: {listed}</div>\n{nav}</div></header>")


def render(res: Results, generated: dt.datetime | None = None) -> str:
    """The whole report as one self-contained HTML document."""
    generated = generated or dt.datetime.now(dt.UTC)
    found = registry.present(res)
    body = "\n".join(section(s.key, s.title, s.html(res)) for s in found)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="normbench">
<title>normbench report</title>
<style>{CSS}</style>
</head>
<body>
{_header(res, generated, found)}
<main>
{body}
<footer>Made by normbench from the results files listed above. Every table and chart is derived from their
records; tables sort when clicked (with JavaScript).</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
