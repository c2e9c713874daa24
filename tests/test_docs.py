"""The documentation site: it builds with ``mkdocs build --strict``, every cell and
layer page derives its backward pass in math typeset at build time (MathML, so
the site reads offline), the code it quotes is still the engine's code, and its
worked examples run.

The build needs the ``docs`` extra (mkdocs-material, mkdocstrings[python],
latex2mathml); the tests that need it skip cleanly without it. That the math
also *looks* right in a browser with no network is checked by eye with
``python docs/check_offline.py`` (headless Chromium, screenshots).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import re
import shutil
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
DOCS_EXTRA = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx",
              "latex2mathml")
OFFLINE_PAGES = ["bptt", "cells/lstm", "cells/gru"]
EXTERNAL_LOAD = re.compile(r"<(?:script|img|iframe|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//",
                           re.I)
COMPOSITION_PAGES = [PAGES / "porting.md", PAGES / "composition.md", PAGES / "data-and-callbacks.md",
                     PAGES / "masking.md"]


def _env():
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("TINYRNN_BACKEND", None)
    return env


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once, strictly, into a temporary folder."""
    for module in DOCS_EXTRA:
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
        assert "<math " in body, (
            f"{page.relative_to(ROOT)}: a 'Backward' section has no equations (no typeset <math>)")


@pytest.mark.parametrize("page", OFFLINE_PAGES)
def test_math_is_typeset_when_the_site_is_built(site, page):
    """The derivation pages carry their equations as MathML, and load nothing from another site."""
    html = (site / page / "index.html").read_text(encoding="utf-8")
    outside_code = re.sub(r"<(pre|code)\b.*?</\1>", "", html, flags=re.S)
    assert html.count("<math ") > 50, f"{page}: expected its equations as <math> elements"
    assert html.count('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">') > 5
    assert "<mtable" in html, f"{page}: its aligned equations should be MathML tables"
    assert "arithmatex" not in html and not re.search(r"\\\(|\\\[|\$\$", outside_code), (
        f"{page}: raw TeX left for a script to typeset")
    assert not re.search(r"mathjax|katex", html, re.I), f"{page}: a math script is still loaded"
    assert not EXTERNAL_LOAD.search(html), f"{page}: loads {EXTERNAL_LOAD.search(html).group(0)!r}"


def test_no_page_loads_anything_from_another_site(site):
    loads = [f"{path.relative_to(site)}: {found.group(0)}" for path in site.rglob("*.html")
             if (found := EXTERNAL_LOAD.search(path.read_text(encoding="utf-8")))]
    assert not loads, "pages that need the network:\n" + "\n".join(loads)


def _offline_math():
    for module in DOCS_EXTRA:
        pytest.importorskip(module, reason="the docs extra is not installed: pip install -e '.[docs]'")
    spec = importlib.util.spec_from_file_location("offline_math", DOCS / "offline_math.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("tex", [
    r"\begin{gathered} a \\ b \end{gathered}",       # a line break the converter cannot lay out
    r"a & b",                                           # an alignment outside an aligned block
    r"\notacommand{x} + 1",                            # a command the converter does not know
])
def test_the_build_fails_on_math_it_cannot_typeset(tex):
    """The hook refuses TeX that would reach the reader unconverted, naming the page."""
    offline_math = _offline_math()                   # skips without the docs extra
    from mkdocs.exceptions import PluginError

    page = f'<p>see <span class="arithmatex">\\({tex}\\)</span></p>'
    with pytest.raises(PluginError, match=r"cells/x\.md: cannot typeset"):
        offline_math.typeset(page, "cells/x.md")
    aligned = (r'<div class="arithmatex">\[\begin{aligned} a &amp;= b &amp;&amp; (H, B)\\ '
               r'c &amp;= d\end{aligned}\]</div>')
    typeset = offline_math.typeset(aligned, "cells/x.md")
    assert "<mtable" in typeset and typeset.count("<mtr>") == 2 and "arithmatex" not in typeset


def test_the_build_fails_on_a_page_that_needs_the_network():
    offline_math = _offline_math()                   # skips without the docs extra
    from mkdocs.exceptions import PluginError

    class Page:
        class file:
            src_uri = "cells/x.md"

    for html in ['<script src="https://unpkg.com/mathjax@3/es5/tex-mml-chtml.js"></script>',
                 '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">']:
        with pytest.raises(PluginError, match="another site"):
            offline_math.on_post_page(f"<html><head>{html}</head></html>", page=Page, config={})
    with pytest.raises(PluginError, match="TeX left untypeset"):
        offline_math.typeset(r"<p>the raw formula \(x^2\) that arithmatex missed</p>", "cells/x.md")
    local = '<script src="../assets/bundle.js"></script><a href="https://keras.io">Keras</a>'
    assert offline_math.on_post_page(local, page=Page, config={}) == local


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


# "Break it" instructions. The convention (stated on the gradient-check page): a page or
# tutorial that asks the reader to break code writes
#     change the line `OLD` ... into `NEW`
# where OLD is the whole code of one line (indentation and comment aside) of the engine
# (tinyrnn/) or of a class the page itself defines. Any other "change/replace `x`" phrasing is
# refused, so an instruction cannot slip past the check.
INSTRUCTION = re.compile(r"\bchange the line\s+`(?P<old>[^`]+)`(?P<where>(?:[^`]|`[^`]*`)*?)"
                         r"\binto\s+`(?P<new>[^`]+)`", re.I)
OTHER_PHRASING = re.compile(                # "change `x` ...", "drop the `x` term", "change it into `y`"
    r"\b(?:change|replace|delete|remove|drop|break)\s+(?!the\s+line\s)(?:the\s+\w+\s+)?`"
    r"|\b(?:change|replace)\s+(?!the\s+line\s)[^.`]{0,30}?\b(?:into|with)\s+`", re.I)
TUTORIALS = ROOT / "tutorials"


def _code(line: str) -> str:
    """A source line's code: no indentation, no trailing comment, single spaces."""
    return " ".join(re.sub(r"(^|\s)#.*$", "", line).split())


def _prose(path: pathlib.Path) -> str:
    """The reader's text of a page (fenced code removed) or of a jupytext tutorial (its comments)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        comments = [line.lstrip() for line in text.splitlines() if line.lstrip().startswith("#")]
        return "\n".join(line[1:].strip() for line in comments)
    return FENCE.sub("", text)


def _own_code(path: pathlib.Path) -> str:
    if path.suffix == ".py":
        return path.read_text(encoding="utf-8")
    return "\n".join(body for _, info, body in _blocks(path) if info == "python")


def _break_instructions():
    """(page, old, new) for every instruction, and the phrasings that break the convention."""
    found, unconventional = [], []
    for path in [*sorted(PAGES.rglob("*.md")), *sorted(TUTORIALS.glob("*.py"))]:
        prose = " ".join(_prose(path).split())
        for match in INSTRUCTION.finditer(prose):
            found.append((path, " ".join(match["old"].split()), " ".join(match["new"].split())))
        unconventional += [f"{path.relative_to(ROOT)}: ...{prose[m.start():m.end() + 60]}..."
                           for m in OTHER_PHRASING.finditer(prose)]
    return found, unconventional


def _where_is(old: str, page: pathlib.Path) -> list[tuple[str, int]]:
    """(file, line number) of every line whose code is ``old``: in tinyrnn/ or the page's own code."""
    sources = {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
               for path in (ROOT / "tinyrnn").rglob("*.py")}
    sources["(the page's own code)"] = _own_code(page)
    return [(name, i) for name, text in sources.items()
            for i, line in enumerate(text.splitlines()) if _code(line) == old]


def test_break_it_instructions_quote_lines_that_exist():
    found, unconventional = _break_instructions()
    assert not unconventional, ("write an instruction to break code as \"change the line `OLD` into `NEW`\" "
                                "(OLD a whole line of the code):\n" + "\n".join(unconventional))
    pages = {path.relative_to(ROOT).as_posix() for path, _, _ in found}
    assert {"docs/pages/cells/lstm.md", "docs/pages/cells/custom-cell.md"} <= pages, pages
    wrong = [f"{path.relative_to(ROOT)}: `{old}` is in {len(where)} places {where}"
             for path, old, _ in found if len(where := _where_is(old, path)) != 1]
    assert not wrong, ("a 'change the line' instruction must quote exactly one line of the engine "
                       "(or of the page's own code), as written there:\n" + "\n".join(wrong))


@pytest.mark.parametrize("page, old, new", [found for found in _break_instructions()[0]
                                             if found[0] in DERIVATION_PAGES],
                         ids=lambda value: value.name if isinstance(value, pathlib.Path) else value[:40])
def test_break_it_instructions_make_the_check_fail(page, old, new, tmp_path):
    """Doing what the page says (on a copy of the engine, or of the page's own code) makes
    the page's own check fail with a gradient-check error (untouched, it passes:
    test_worked_examples_run)."""
    page_name = page.relative_to(PAGES)
    [(where, number)] = _where_is(old, page)
    engine = tmp_path / "tinyrnn"
    shutil.copytree(ROOT / "tinyrnn", engine, ignore=shutil.ignore_patterns("__pycache__"))
    check = "\n".join(body for section, info, body in _blocks(page)
                      if info == "python" and section.startswith(RUNNABLE_SECTIONS))

    def broken(text: str) -> str:
        lines = text.splitlines()
        lines[number] = lines[number].replace(_code(lines[number]), new)
        return "\n".join(lines) + "\n"

    if where == "(the page's own code)":
        check = check.replace(_own_code(page), broken(_own_code(page)))
        assert new in check, "the page's own code is not in its runnable sections"
    else:
        target = tmp_path / where
        target.write_text(broken(target.read_text(encoding="utf-8")), encoding="utf-8")
    env = dict(_env(), PYTHONPATH=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode != 0 and "AssertionError: gradient check failed" in run.stderr, (
        f"{page_name}: changing `{old}` into `{new}` should fail the page's gradient check:\n"
        + (run.stdout + run.stderr)[-3000:])


# The API reference: the methods a student calls first are documented, ``compile``
# names every string it accepts, and ``>>>`` examples render as code.
API_METHODS = {"Sequential": ["compile", "add", "forward", "backward", "zero_grads", "get_weights",
                              "count_params"],
               "Layer": ["forward", "backward", "zero_grads", "get_weights", "count_params"]}


def test_every_public_method_of_sequential_and_layer_has_a_docstring():
    from tinyrnn.layers.base import Layer
    from tinyrnn.models import Sequential

    missing = []
    for cls in (Sequential, Layer):
        for name, member in vars(cls).items():
            function = member.fget if isinstance(member, property) else member
            if not name.startswith("_") and callable(function) and not (function.__doc__ or "").strip():
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"public methods without a docstring: {missing}"
    for cls, names in API_METHODS.items():
        for name in names:
            doc = getattr({"Sequential": Sequential, "Layer": Layer}[cls], name).__doc__
            assert len(doc.split()) >= 8, f"{cls}.{name}: say what it does, its arguments and what it returns"


def test_compile_lists_every_name_it_accepts():
    from tinyrnn import losses, metrics, optimizers
    from tinyrnn.models import Sequential

    doc = Sequential.compile.__doc__
    names = {"loss": losses.LOSSES, "optimizer": optimizers.OPTIMIZERS, "metrics": metrics.METRICS}
    missing = [f"{what} {name!r}" for what, table in names.items() for name in table
               if f'"{name}"' not in doc]
    assert not missing, f"Sequential.compile's docstring does not list: {missing}"


def test_api_examples_run():
    """The ``Examples`` of the methods above run and print what they show (doctest)."""
    import doctest

    from tinyrnn import Sequential
    from tinyrnn.layers import Dense, SimpleRNN
    from tinyrnn.layers.base import Layer
    from tinyrnn.losses import Huber
    from tinyrnn.optimizers import SGD

    model = Sequential([SimpleRNN(4, input_shape=[None, 1]), Dense(1)])
    names = dict(Sequential=Sequential, SimpleRNN=SimpleRNN, Dense=Dense, Huber=Huber, SGD=SGD)
    tests = [test for cls in (Sequential, Layer) for name in API_METHODS[cls.__name__]
             for test in doctest.DocTestFinder().find(getattr(cls, name), f"{cls.__name__}.{name}",
                                                      globs={**names, "model": model})
             if test.examples]
    assert len(tests) >= 4, [test.name for test in tests]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed (see the output above)"


def test_api_examples_render_as_code(site):
    """No ``>>>`` reaches an API page as text (Markdown would make it nested quotes)."""
    as_text = []
    for page in (site / "api").glob("*/index.html"):
        html = page.read_text(encoding="utf-8")
        if "&gt;&gt;&gt;" in re.sub(r"<(pre|code)\b.*?</\1>", "", html, flags=re.S):
            as_text.append(page.parent.name)
    assert not as_text, f"'>>>' examples rendered as text (nested quotes) on {as_text}"
    models = (site / "api" / "tinyrnn.models" / "index.html").read_text(encoding="utf-8")
    assert models.count('<span class="gp">&gt;&gt;&gt; </span>') >= 6, "examples should be pycon code"
    rendered = re.sub(r"<[^>]+>", "", re.sub(r"<pre\b.*?</pre>", "", models, flags=re.S))
    for name in ("mean_absolute_error", "huber_loss", "last_time_step_mse", "sgd"):
        assert f"&quot;{name}&quot;" in rendered or f'"{name}"' in rendered, f"compile's {name!r} not shown"


# The results page shows the figures of the measured chapter run (docs/chapter_figures.py).
def _chapter_figures():
    spec = importlib.util.spec_from_file_location("chapter_figures", DOCS / "chapter_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(folder: pathlib.Path, quick: bool) -> pathlib.Path:
    """A chapter --out folder with two figures, as write_report lays it out."""
    folder.mkdir()
    command = "python -m tinyrnn chapter" + (" --quick" if quick else "")
    (folder / "results.json").write_text(json.dumps({"command": command, "date": "2026-12-01", "quick": quick,
                                                     "figures": ["a.png", "b.png"]}))
    (folder / "report.md").write_text("# Report\n\n## Results\n\ntable\n\n## Figures\n\n"
                                      "### Curve A\n\n![Curve A](a.png)\n\n"
                                      "### Curve B\n\n![Curve B](b.png)\n\nWhat B shows.\n")
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes(b"\x89PNG " + name.encode())
    return folder


def test_chapter_figures_are_copied_with_their_captions_and_command(tmp_path):
    chapter_figures = _chapter_figures()
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "stale.png").write_bytes(b"an earlier run's figure")
    manifest = chapter_figures.collect(_fake_run(tmp_path / "run", quick=False), figures)
    assert sorted(p.name for p in figures.glob("*.png")) == ["a.png", "b.png"]
    assert (figures / "b.png").read_bytes() == b"\x89PNG b.png"
    assert manifest["figures"][1] == {"file": "b.png", "caption": "Curve B", "note": "What B shows."}
    markdown = chapter_figures.figures_markdown(figures)
    assert "Made by `python -m tinyrnn chapter` on 2026-12-01" in markdown
    assert "### Curve A\n\n![Curve A](figures/chapter/a.png)" in markdown and "What B shows." in markdown
    with pytest.raises(SystemExit, match="--quick run"):
        chapter_figures.collect(_fake_run(tmp_path / "quick", quick=True), figures)
    assert "No figures committed yet" in chapter_figures.figures_markdown(tmp_path / "none")


def test_results_page_shows_the_committed_figures(site):
    chapter_figures = _chapter_figures()
    html = (site / "results" / "index.html").read_text(encoding="utf-8")
    assert chapter_figures.MARKER not in html and "<h2 id=\"figures\">" in html
    manifest = chapter_figures.FIGURES / chapter_figures.MANIFEST
    if not manifest.exists():
        assert "No figures committed yet" in html
        assert not list(chapter_figures.FIGURES.glob("*.png")), "figures without figures.json"
        return
    listed = [figure["file"] for figure in json.loads(manifest.read_text())["figures"]]
    assert sorted(listed) == sorted(p.name for p in chapter_figures.FIGURES.glob("*.png"))
    for name in listed:
        assert f'src="../figures/chapter/{name}"' in html, name
        assert (site / "figures" / "chapter" / name).exists(), name
