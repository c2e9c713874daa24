"""MkDocs hook: typeset every equation when the site is built, so it reads offline.

``pymdownx.arithmatex`` (generic mode) leaves TeX in the page:
``<span class="arithmatex">\\(...\\)</span>`` inline and
``<div class="arithmatex">\\[...\\]</div>`` on its own line. This hook converts
each formula to MathML with ``latex2mathml`` (pure Python, in the ``docs``
extra). Browsers draw MathML themselves (Chromium 109+, Firefox, Safari), so a
page needs no script, and no network, to show its math.

A page that would still need the network fails the build (``PluginError``):

- a formula the converter cannot lay out: a TeX command left in the MathML, a
  bare ``&`` (an alignment it did not understand) or a line break it cannot
  draw. Rewrite the TeX (one ``aligned`` block, shorter lines) and build again;
- TeX delimiters ``\\(``, ``\\[`` or ``$$`` left in a page's text (outside code);
- a script, stylesheet, font or image loaded from another site.

The one rewrite done here: ``aligned`` (which latex2mathml reads as plain text)
becomes ``align*``, the same rows and columns as a MathML table.
"""

from __future__ import annotations

import html
import re

from mkdocs.exceptions import PluginError

try:
    from latex2mathml.converter import convert
except ImportError as err:  # pragma: no cover - a missing extra, said plainly
    raise PluginError("the docs render math with latex2mathml, which is not installed: "
                      "pip install -e '.[docs]'") from err

MATH = re.compile(r'<(?P<tag>span|div) class="arithmatex">(?P<tex>.*?)</(?P=tag)>', re.S)
DELIMITERS = {"span": ("\\(", "\\)"), "div": ("\\[", "\\]")}
REWRITES = {"\\begin{aligned}": "\\begin{align*}", "\\end{aligned}": "\\end{align*}"}

# What converted MathML must not contain: each is TeX the converter did not understand.
UNCONVERTED = {
    "a TeX command": re.compile(r"\\[A-Za-z]+"),
    "a bare '&' (an alignment outside aligned/bmatrix)": re.compile(r"&(?!#?\w+;)"),
    "a line break MathML cannot draw (use one aligned block)": re.compile(r'linebreak="newline"'),
}
CODE = re.compile(r"<(?P<tag>pre|code)\b.*?</(?P=tag)>", re.S)
LEFT_TEX = re.compile(r'class="arithmatex"|\\\(|\\\[|\$\$')
EXTERNAL = re.compile(
    r"<(?:script|img|iframe|source)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^\s\"'>]+"
    r"|<link\b(?=[^>]*\brel\s*=\s*[\"']?(?:stylesheet|preconnect|preload|modulepreload|dns-prefetch|icon))"
    r"[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^\s\"'>]+", re.I)


def tex_to_mathml(tex: str, display: bool) -> str:
    """One formula (without its delimiters) as a ``<math>`` element; raises ValueError
    naming what the converter left unconverted."""
    for old, new in REWRITES.items():
        tex = tex.replace(old, new)
    mathml = convert(tex, display="block" if display else "inline")
    for what, pattern in UNCONVERTED.items():
        found = pattern.search(mathml)
        if found:
            raise ValueError(f"{what} ({found.group(0)!r}) is left in the MathML")
    return mathml


def typeset(page_html: str, where: str) -> str:
    """Every arithmatex formula of a page, replaced by MathML."""

    def replace(match: re.Match) -> str:
        tag = match["tag"]
        tex = html.unescape(match["tex"]).strip()
        opening, closing = DELIMITERS[tag]
        if not (tex.startswith(opening) and tex.endswith(closing)):
            raise PluginError(f"{where}: a formula without its {opening} {closing} delimiters: {tex!r}")
        try:
            mathml = tex_to_mathml(tex[len(opening):-len(closing)].strip(), display=tag == "div")
        except Exception as err:
            raise PluginError(f"{where}: cannot typeset {tex!r} at build time: {err}. "
                              "Rewrite it in TeX that latex2mathml converts.") from err
        return f'<div class="math-display">{mathml}</div>' if tag == "div" else mathml

    page_html = MATH.sub(replace, page_html)
    left = LEFT_TEX.search(CODE.sub("", page_html))
    if left:
        raise PluginError(f"{where}: TeX left untypeset ({left.group(0)!r}), which would need "
                          "a script to read; write math as \\( \\) or \\[ \\] for arithmatex.")
    return page_html


def on_page_content(html, page, config, files, **kwargs):
    return typeset(html, page.file.src_uri)


def on_post_page(output, page, config, **kwargs):
    external = EXTERNAL.search(output)
    if external:
        raise PluginError(f"{page.file.src_uri}: the page loads {external.group(0)!r} from another "
                          "site; the docs must read offline (ship the file under docs/pages/).")
    return output
