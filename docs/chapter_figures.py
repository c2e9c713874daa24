"""The chapter's figures on the results page: copy a measured run's PNGs into the docs.

    python -m tinyrnn chapter --out chapter_out        # the full, measured run
    python docs/chapter_figures.py chapter_out         # its figures into docs/pages/figures/chapter/

The second command copies the PNGs the run's ``results.json`` lists into
``docs/pages/figures/chapter/`` (a folder of its own), removes figures of an earlier run that this one did not
make, and writes ``docs/pages/figures/chapter/figures.json``: the command and date of
the run, and each figure's file, caption and note (read from the run's
``report.md``). Commit the folder with the results table it belongs to.

A quick run (``--quick``) is refused: its figures are not comparable with the
course's, and the page says that its figures are the measured run's.

The MkDocs hook ``on_page_markdown`` below (listed in ``mkdocs.yml``) puts the
figures in ``results.md`` where the line ``<!-- chapter figures -->`` stands,
under the command that made them; with no ``figures.json`` it says so instead.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import sys

FIGURES = pathlib.Path(__file__).resolve().parent / "pages" / "figures" / "chapter"
MANIFEST = "figures.json"
MARKER = "<!-- chapter figures -->"
RESULTS_PAGE = "results.md"


def captions_from_report(report: str) -> dict[str, tuple[str, str]]:
    """{file: (caption, note)} from a chapter report's "## Figures" section, where each
    figure is "### caption", a blank line, "![caption](file)" and an optional note paragraph."""
    section = report.split("\n## Figures", 1)[-1] if "\n## Figures" in report else ""
    found = {}
    for block in re.split(r"^### ", section, flags=re.M)[1:]:
        caption, _, body = block.partition("\n")
        image = re.search(r"!\[[^\]]*\]\(([^)\s]+)\)", body)
        if image:
            note = body[image.end():].strip().split("\n## ", 1)[0].strip()
            found[image.group(1)] = (caption.strip(), note)
    return found


def collect(run: pathlib.Path, figures: pathlib.Path = FIGURES) -> dict:
    """Copy the run's figures into ``figures`` and write its manifest; returns the manifest."""
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    if results.get("quick") or "--quick" in results.get("command", ""):
        sys.exit(f"{run} is a --quick run: its figures are not comparable and are not the measured "
                 "run the results page shows. Run `python -m tinyrnn chapter` (the full run) first.")
    report = run / "report.md"
    captions = captions_from_report(report.read_text(encoding="utf-8")) if report.exists() else {}
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob("*.png"):
        old.unlink()
    entries = []
    for name in results.get("figures", []):
        shutil.copyfile(run / name, figures / name)
        caption, note = captions.get(name, (name, ""))
        entries.append({"file": name, "caption": caption, "note": note})
    manifest = {"command": results.get("command", "python -m tinyrnn chapter"),
                "date": results.get("date", ""), "figures": entries}
    (figures / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def figures_markdown(figures: pathlib.Path = FIGURES, prefix: str = "figures/chapter/") -> str:
    """The results page's figures, as Markdown: from the manifest, or a note that there are none."""
    manifest_path = figures / MANIFEST
    if not manifest_path.exists():
        return ("!!! note \"No figures committed yet\"\n"
                "    The figures of the last measured run go here: run `python -m tinyrnn chapter "
                "--out chapter_out`, then `python docs/chapter_figures.py chapter_out`, and commit "
                "`docs/pages/figures/chapter/`.\n")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    lines = [f"Made by `{manifest['command']}`" + (f" on {manifest['date']}" if manifest["date"] else "")
             + " (the run of the table above), copied here by `python docs/chapter_figures.py`.", ""]
    for figure in manifest["figures"]:
        if not (figures / figure["file"]).exists():
            raise FileNotFoundError(f"{manifest_path} lists {figure['file']}, which is not in {figures}")
        lines += [f"### {figure['caption']}", "", f"![{figure['caption']}]({prefix}{figure['file']})", ""]
        if figure["note"]:
            lines += [figure["note"], ""]
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri == RESULTS_PAGE and MARKER in markdown:
        return markdown.replace(MARKER, figures_markdown())
    return markdown


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=pathlib.Path, help="the --out folder of `python -m tinyrnn chapter`")
    args = parser.parse_args(argv)
    manifest = collect(args.run)
    print(f"{len(manifest['figures'])} figure(s) of `{manifest['command']}` copied to {FIGURES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
