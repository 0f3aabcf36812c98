"""The page shell: which sections these results have, the header with its contents, the document."""

from __future__ import annotations

import datetime as dt

from .. import model
from .. import search as searched
from .. import synchronized as sync
from ..formatting import plural
from ..model import Results
from .agreement import agreement_section
from .behaviour import behaviour_section
from .derivatives import derivatives_section
from .divergences import divergences_section
from .elements import SECTIONS, esc
from .search import search_section
from .speed import speed_section
from .style import CSS, SCRIPT
from .summary import summary_section
from .synchronized import synchronized_section


def sections(res: Results) -> list[str]:
    """The sections these results have something for: a speed-only report has no verification
    sections, a verification-only one no speed section, and only synchronized, derivative or
    mixed-precision records have their section; the summary is always there."""
    c = res.checks
    verified = bool(len(model.verification(res)))
    single = bool(len(model.single_process(res)))  # records with a section of their own have only that one
    own = model.verification(res)
    own = bool(len(own)) and bool((model.derivative(own) | model.mixed(own)).any())
    timed = bool(len(c)) and bool((c["suite"] == "speed").any())
    present = {"summary": True, "behaviour": single, "agreement": single, "derivatives": own,
               "synchronized": bool(len(sync.records(res))), "search": bool(len(searched.records(res))),
               "divergences": verified or bool(model.unexpected(res)), "speed": timed}
    return [key for key, _ in SECTIONS if present[key]]


def _header(res: Results, generated: dt.datetime, keys: list[str]) -> str:
    sources = list(res.environments["source"]) if "source" in res.environments else []
    listed = ", ".join(f"<code>{esc(s)}</code>" for s in sources) or "none"
    if len(sources) > 3:  # a `normbench run` writes one file per process: name the runs, fold the files
        runs = ", ".join(f"<code>{esc(r)}</code>" for r in dict.fromkeys(model.run_of(res.environments["run"])))
        listed = f"{runs} <details><summary>the files</summary>{listed}</details>"
    titles = dict(SECTIONS)
    toc = "".join(f'<li><a href="#{key}">{esc(titles[key])}</a></li>' for key in keys) if len(keys) > 1 else ""
    nav = f'<nav class="toc" aria-label="Contents"><ol>{toc}</ol></nav>\n' if toc else ""
    return (f"<header><div>\n<h1>normbench report</h1>\n"
            f'<div class="meta">Generated {esc(generated.strftime("%Y-%m-%d %H:%M UTC"))} from '
            f"{plural(len(sources), 'results file')}: {listed}</div>\n{nav}</div></header>")


RENDERERS = {"summary": summary_section, "behaviour": behaviour_section, "agreement": agreement_section,
             "derivatives": derivatives_section,
             "synchronized": synchronized_section, "search": search_section, "divergences": divergences_section,
             "speed": speed_section}


def render(res: Results, generated: dt.datetime | None = None) -> str:
    """The whole report as one self-contained HTML document."""
    generated = generated or dt.datetime.now(dt.UTC)
    keys = sections(res)
    body = "\n".join(RENDERERS[key](res) for key in keys)
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
{_header(res, generated, keys)}
<main>
{body}
<footer>Made by normbench from the results files listed above. Every table and chart is derived from their
records; tables sort when clicked (with JavaScript).</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
