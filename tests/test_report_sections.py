"""The section registry: a section is one module plus one line, shown in both reports or in neither."""

from __future__ import annotations

import pytest

from normbench.reports import load, markdown, sections
from normbench.reports.html import page as html
from normbench.results.records import Record, ResultsFile

from . import report_section_example as example


def _results(tmp_path, checks: list[str]):
    out = ResultsFile(tmp_path / "results.jsonl")
    for check in checks:
        out.add(Record(suite="agreement", check=check, op="layer_norm", adapter="numpy", framework_version="2",
                       dtype="float32", shape=[2, 3], layout=None, input="normal", params={}, outcome="pass",
                       seed=0, case="layer_norm-2x3", message="hello from the throwaway section"))
    out.close()
    return load(tmp_path / "results.jsonl")


@pytest.fixture
def registered(monkeypatch):
    """The one registration line, undone after the test."""
    monkeypatch.setattr(sections, "SECTIONS", [*sections.SECTIONS, example.SECTION])


def test_a_registered_section_shows_in_html_and_markdown(tmp_path, registered):
    res = _results(tmp_path, ["forward_train", example.CHECK])
    page = html.render(res)
    assert '<section aria-labelledby="throwaway">' in page and '<h2 id="throwaway">Throwaway section</h2>' in page
    assert '<a href="#throwaway">Throwaway section</a>' in page  # in the contents
    assert "throwaway-html: hello from the throwaway section" in page
    assert "throwaway" in html.sections(res)
    md = markdown.render(res)
    assert "### Throwaway" in md and "throwaway-md: hello from the throwaway section" in md


def test_a_registered_section_is_absent_from_both_when_its_predicate_is_false(tmp_path, registered):
    res = _results(tmp_path, ["forward_train"])
    assert "throwaway" not in html.render(res) and "throwaway" not in html.sections(res)
    assert "Throwaway" not in markdown.render(res)


def test_unregistered_the_section_is_nowhere(tmp_path):
    res = _results(tmp_path, ["forward_train", example.CHECK])
    assert "throwaway" not in html.render(res) and "Throwaway" not in markdown.render(res)


def test_presence_is_decided_once_for_both_reports(tmp_path):
    res = _results(tmp_path, ["forward_train"])
    keys = [s.key for s in sections.present(res)]
    assert html.sections(res) == keys
    page = html.render(res)
    assert [s.key for s in sections.SECTIONS if f'<section aria-labelledby="{s.key}">' in page] == keys
