"""The documentation site: it builds with ``mkdocs build --strict``, every cell and
layer page derives its backward pass in rendered math, the code it quotes is
still the engine's code, and its worked examples run.

The build needs the ``docs`` extra (mkdocs-material, mkdocstrings[python]); the
tests that need it skip cleanly without it.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = DOCS / "pages"
DERIVATION_PAGES = sorted([*(PAGES / "cells").glob("*.md"), *(PAGES / "layers").glob("*.md")])

FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)
QUOTED_FILE = re.compile(r'title="[^"]*\((?P<path>tinyrnn/[\w/]+\.py)\)"')
RUNNABLE_SECTIONS = ("Check it", "Example")
COMPOSITION_PAGES = [PAGES / "porting.md", PAGES / "composition.md"]


def _env():
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("TINYRNN_BACKEND", None)
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once, strictly, into a temporary folder."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx"):
        pytest.importorskip(module, reason="the docs extra is not installed: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(DOCS / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (
        "mkdocs build --strict -f docs/mkdocs.yml failed:\n" + (run.stdout + run.stderr)[-6000:])
    return out


def _html(site, page: pathlib.Path) -> str:
    """The built HTML of a Markdown page (use_directory_urls: foo/bar.md -> foo/bar/index.html)."""
    rel = page.relative_to(PAGES).with_suffix("")
    return (site / rel / "index.html").read_text(encoding="utf-8")


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).strip()


def test_strict_build_passes(site):
    assert (site / "index.html").exists()


@pytest.mark.parametrize("page", DERIVATION_PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_page_derives_its_backward_pass_in_math(site, page):
    html = _html(site, page)
    headings = list(re.finditer(r"<h(?P<level>[23])[^>]*>(?P<title>.*?)</h(?P=level)>", html, re.S))
    sections = []
    for i, h in enumerate(headings):
        if _text(h["title"]).startswith("Backward"):
            end = headings[i + 1].start() if i + 1 < len(headings) else len(html)
            sections.append(html[h.end():end])
    assert sections, f"{page.relative_to(ROOT)} has no 'Backward' section"
    for body in sections:
        assert 'class="arithmatex"' in body, (
            f"{page.relative_to(ROOT)}: a 'Backward' section has no equations (no arithmatex math)")


def test_math_is_rendered_by_mathjax(site):
    html = (site / "bptt" / "index.html").read_text(encoding="utf-8")
    assert html.count('class="arithmatex"') > 10
    assert "javascripts/mathjax.js" in html and "mathjax@3" in html


def test_api_reference_has_every_module(site):
    for path in (ROOT / "tinyrnn").rglob("*.py"):
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        assert (site / "api" / name / "index.html").exists(), f"no API page for {name}"
    recurrent = (site / "api" / "tinyrnn.layers.recurrent" / "index.html").read_text(encoding="utf-8")
    assert 'id="tinyrnn.layers.recurrent.LSTMCell.step_backward"' in recurrent


def _blocks(page: pathlib.Path):
    """(level-2 section heading, info string, body) for every fenced block of a page."""
    text = page.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        headings = re.findall(r"^## (.+)$", text[:match.start()], re.M)
        yield (headings[-1].strip() if headings else ""), match["info"].strip(), match["body"]


def test_quoted_code_is_the_engines_code():
    """A block titled "... (tinyrnn/x.py)" quotes lines of that file: each must still be there."""
    stale, quoted = [], 0
    for page in sorted(PAGES.rglob("*.md")):
        for _, info, body in _blocks(page):
            found = QUOTED_FILE.search(info)
            if not found:
                continue
            quoted += 1
            source = ROOT / found["path"]
            assert source.exists(), f"{page.relative_to(ROOT)} quotes {found['path']}, which does not exist"
            lines = {line.strip() for line in source.read_text(encoding="utf-8").splitlines()}
            stale += [f"{page.relative_to(ROOT)} [{info}]: {line.strip()!r}"
                      for line in body.splitlines() if line.strip() and line.strip() not in lines]
    assert quoted >= 20
    assert not stale, ("docs quote code lines that are no longer in the engine; update the page "
                       "(derivation and quote) to the new code:\n" + "\n".join(stale))


def _run_programs(programs):
    """Run each (name, code) in one subprocess; the failures' tracebacks, or ''."""
    runner = textwrap.dedent("""
        import sys, traceback
        failed = []
        for name, code in PROGRAMS:
            try:
                exec(compile(code, name, "exec"), {"__name__": "__docs_example__"})
            except Exception:
                failed.append(name + "\\n" + traceback.format_exc())
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
    """).replace("PROGRAMS", repr(programs))
    return subprocess.run([sys.executable, "-c", runner], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("page", COMPOSITION_PAGES, ids=lambda p: p.name)
def test_porting_and_composition_pages_run(page):
    """The 'Example' and 'Check it' code of the porting page (every row of its tables) and of the
    composition page (a residual block against its hand-derived gradient) runs."""
    code = "\n".join(body for section, info, body in _blocks(page)
                     if info == "python" and section.startswith(RUNNABLE_SECTIONS))
    assert "assert" in code
    run = _run_programs([(str(page.relative_to(ROOT)), code)])
    assert run.returncode == 0, f"{page.name}'s code failed:\n" + (run.stdout + run.stderr)[-6000:]


def test_worked_examples_run():
    """The 'Check it' and 'Example' code of every cell and layer page runs (gradient checks included)."""
    programs = []
    for page in DERIVATION_PAGES:
        code = [body for section, info, body in _blocks(page)
                if info == "python" and section.startswith(RUNNABLE_SECTIONS)]
        if code:
            programs.append((str(page.relative_to(ROOT)), "\n".join(code)))
    assert len(programs) == len(DERIVATION_PAGES), "every cell and layer page ends with a runnable check"
    run = _run_programs(programs)
    assert run.returncode == 0, "examples in the docs failed:\n" + (run.stdout + run.stderr)[-6000:]
