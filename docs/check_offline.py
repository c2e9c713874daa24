"""Open doc pages in headless Chromium with networking off; screenshot them.

    python docs/check_offline.py                  # builds the site, checks bptt, LSTM, GRU
    python docs/check_offline.py --site /tmp/site --out /tmp/shots cells/simplernn

The site's math is MathML written at build time (``docs/offline_math.py``), so a
page must show its equations with no network at all. This script checks that
in a real browser:

1. builds the site (``mkdocs build --strict``) unless ``--site`` names a built one;
2. opens each page from disk (``file://``) in headless Chromium inside a network
   namespace of its own (``unshare -n``: no interface but a dead loopback), with
   Chromium's background requests off and a net log recorded;
3. fails if the page asked for any http(s) URL (read from the net log), and
   writes full-page screenshots, cut into slices of at most 1400 pixels:
   ``OUT/<page>-1.png``, ``OUT/<page>-2.png``, ... Look at them: every equation
   should be typeset (fractions, sub- and superscripts, aligned rows), with no
   raw TeX such as ``\\(`` or ``\\begin``;
4. lists the display equations wider than the text column in a 1280-pixel
   window (they scroll sideways; break them into aligned rows).

Needs Chromium (``apt-get install -y chromium``), ``unshare`` (util-linux;
root, or unprivileged user namespaces for ``unshare -rn``), Pillow (installed
with matplotlib) and the ``docs`` extra. Exit status 0 when every page loaded
nothing from the network and has no equation wider than its text; the
screenshots are for your eyes.
"""

from __future__ import annotations

import argparse
import html as html_module
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = ["bptt", "cells/lstm", "cells/gru"]
SHOTS = pathlib.Path(tempfile.gettempdir()) / "tinyrnn_offline"
WIDTH, TALLEST_PAGE, SLICE = 1280, 16000, 1400      # a laptop's window: both side bars shown
# Run in the page once it has loaded: the display equations wider than the text column
# (they scroll, and would be cut off without it), written into the DOM for --dump-dom.
MEASURE_WIDE_EQUATIONS = """<script>
addEventListener("load", () => {
  const wide = [...document.querySelectorAll(".math-display")]
    .filter(box => box.scrollWidth > box.clientWidth + 1)
    .map(box => `${box.scrollWidth} px > ${box.clientWidth} px: ${box.textContent.slice(0, 60)}`);
  const out = document.createElement("pre");
  out.id = "wide-equations";
  out.textContent = JSON.stringify(wide);
  document.body.append(out);
});
</script>"""
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
    "--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run", f"--window-size={WIDTH},{TALLEST_PAGE}",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("no Chromium found: apt-get update && apt-get install -y chromium")


def offline_prefix() -> list[str]:
    """A command prefix that runs its command with no network: a fresh network namespace."""
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if shutil.which("unshare") and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    sys.exit("cannot cut the network: 'unshare -n' (root) and 'unshare -rn' (user namespaces) both failed")


def build_site(out: pathlib.Path) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    config = ROOT / "docs" / "mkdocs.yml"
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(out)],
                   cwd=ROOT, env=env, check=True)


def requested_urls(net_log: pathlib.Path) -> list[str]:
    """The http(s) URLs the page itself asked for (Chromium's own background requests left out)."""
    text = net_log.read_text(encoding="utf-8").rstrip()
    if not text.endswith("}"):                       # a log cut short at exit: close its event list
        text = text.rstrip(",") + "]}"
    log = json.loads(text)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [event.get("params", {}) for event in log["events"] if event["type"] == start_job]
    return sorted({params["url"] for params in starts if params.get("url", "").startswith(("http:", "https:"))
                   and "file://" in params.get("network_isolation_key", "")})


def content_height(image) -> int:
    """Rows down to the page's last content: the theme pins its dark footer to the
    bottom of the (tall) window, with blank rows between it and the content."""
    import numpy

    rows = numpy.asarray(image.convert("L"))
    bottom = len(rows)
    while bottom > 0 and rows[bottom - 1].mean() < 128:       # the footer: dark rows
        bottom -= 1
    blank = rows[:bottom].min(axis=1) >= rows[bottom - 1].max() if bottom else []
    while bottom > 0 and blank[bottom - 1]:                   # then blank rows up to the content
        bottom -= 1
    return min(len(rows), bottom + 40) if bottom else len(rows)


def save_slices(screenshot: pathlib.Path, out: pathlib.Path, name: str) -> list[pathlib.Path]:
    """The screenshot down to the page's last content, in slices of SLICE rows."""
    from PIL import Image

    image = Image.open(screenshot).convert("RGB")
    height = content_height(image)
    slices = []
    for i, top in enumerate(range(0, height, SLICE), start=1):
        path = out / f"{name}-{i}.png"
        image.crop((0, top, image.width, min(top + SLICE, height))).save(path)
        slices.append(path)
    return slices


def wide_equations(html: pathlib.Path, browser: list[str]) -> list[str]:
    """The page's display equations wider than its text column, measured in the browser
    (on a copy of the page with a measuring script, next to the original)."""
    probe = html.with_name("_measure.html")
    probe.write_text(html.read_text(encoding="utf-8").replace("</body>", MEASURE_WIDE_EQUATIONS + "</body>"),
                     encoding="utf-8")
    try:
        dom = subprocess.run([*browser, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                             timeout=300, check=True).stdout
    finally:
        probe.unlink()
    found = re.search(r'<pre id="wide-equations">(.*?)</pre>', dom, re.S)
    if not found:
        sys.exit(f"{html}: the measuring script did not run")
    return json.loads(html_module.unescape(found.group(1)))


def check_page(site: pathlib.Path, page: str, out: pathlib.Path, browser: list[str]) -> list[str]:
    """Screenshot one page offline; returns its problems: the URLs it requested and the
    equations wider than the text column (none when it reads well offline)."""
    html = site / page / "index.html"
    if not html.exists():
        sys.exit(f"{html} does not exist: is {page!r} a page of the site (path without .md)?")
    name = page.replace("/", "-")
    with tempfile.TemporaryDirectory() as tmp:
        shot, net_log = pathlib.Path(tmp) / "page.png", pathlib.Path(tmp) / "net.json"
        subprocess.run([*browser, f"--screenshot={shot}", f"--log-net-log={net_log}", html.as_uri()],
                       capture_output=True, timeout=300, check=True)
        slices = save_slices(shot, out, name)
        urls = requested_urls(net_log)
    wide = wide_equations(html, browser)
    print(f"{page}: {len(slices)} screenshot(s) {slices[0].parent}/{name}-*.png; "
          f"{'requested ' + ', '.join(urls) if urls else 'no network request'}; "
          f"{len(wide)} display equation(s) wider than the text column at {WIDTH} px")
    return [f"requested {url}" for url in urls] + [f"wider than the text: {line}" for line in wide]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", default=PAGES,
                        help="site pages, e.g. cells/lstm (default: %(default)s)")
    parser.add_argument("--site", type=pathlib.Path,
                        help="a built site (default: build one in a temporary folder)")
    parser.add_argument("--out", type=pathlib.Path, default=SHOTS,
                        help="folder for the screenshots (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    browser = [*offline_prefix(), chromium(), *CHROMIUM_FLAGS]
    with tempfile.TemporaryDirectory() as tmp:
        site = args.site
        if site is None:
            site = pathlib.Path(tmp) / "site"
            build_site(site)
        found = {page: check_page(site, page, args.out, browser) for page in args.pages}
    problems = {page: lines for page, lines in found.items() if lines}
    if problems:
        print("pages that need the network or have equations too wide:", json.dumps(problems, indent=2))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
