"""The tutorials: every one runs as a script in quick mode and is a valid notebook.

Each ``tutorials/NN_name.py`` is a percent-format jupytext notebook. Here each
one runs as ``python tutorials/NN_name.py`` in a subprocess with
``TINYRNN_QUICK=1`` (small data, few epochs), ``MPLBACKEND=Agg`` and its figures
saved to a temporary folder (``TINYRNN_TUTORIAL_OUT``), so the figures are
really drawn; then each is read with jupytext and validated with nbformat.
One tutorial is also executed as a notebook through a Jupyter kernel, when
nbclient and ipykernel are installed (they are not tinyrnn dependencies).

BLAS is limited to one thread in the subprocesses: tinyrnn's matrices are
small, and on a busy machine a BLAS thread pool makes training many times
slower. The first eleven tutorials take about 30 s together on 2 cores, and
tutorial 12 a few seconds more.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIAL_DIR = ROOT / "tutorials"
TUTORIALS = sorted(TUTORIAL_DIR.glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 180  # one tutorial in quick mode takes a few seconds; this only stops a hung run
TEACHING_ORDER = [
    "01_data_and_baselines", "02_three_shapes", "03_rnn_cell_by_hand", "04_deep_rnns_and_forecasting_ahead",
    "05_seq2seq_and_timedistributed", "06_unstable_gradients", "07_lstm_and_peepholes", "08_gru",
    "09_conv1d_and_wavenet", "10_mc_dropout_error_bars", "11_running_on_a_gpu",
    "12_hand_derived_vs_recorded_backward", "13_characters_to_shakespeare",
    "14_padding_masking_bidirectional",
]
TEACHING_ORDER += ["15_encoder_decoder_attention"]       # issue 13: encoder, decoder, attention


def quick_env(figures_dir: pathlib.Path | None = None) -> dict:
    """The environment a tutorial runs in under test: quick mode, no display, one BLAS thread."""
    env = {**os.environ, "TINYRNN_QUICK": "1", "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("TINYRNN_BACKEND", None)  # the tutorials choose their backend themselves (NumPy)
    env.pop("TINYRNN_TUTORIAL_OUT", None)
    if figures_dir is not None:
        env["TINYRNN_TUTORIAL_OUT"] = str(figures_dir)
    return env


def repo_snapshot() -> set:
    """The files a tutorial could litter: everything in tutorials/, and figures or notebooks at the root."""
    inside = {p.relative_to(ROOT) for p in TUTORIAL_DIR.rglob("*") if "__pycache__" not in p.parts}
    at_root = {p.relative_to(ROOT) for pattern in ("*.png", "*.ipynb") for p in ROOT.glob(pattern)}
    return inside | at_root


def test_one_tutorial_per_topic_in_teaching_order():
    assert [p.stem for p in TUTORIALS] == TEACHING_ORDER


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_as_a_script_in_quick_mode(path, tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    before = repo_snapshot()
    result = subprocess.run([sys.executable, str(path.relative_to(ROOT))], cwd=ROOT, env=quick_env(figures),
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{path.name} failed (exit {result.returncode})\n--- stdout (end) ---\n{result.stdout[-3000:]}"
        f"\n--- stderr (end) ---\n{result.stderr[-5000:]}"
    )
    assert "RuntimeWarning" not in result.stderr, f"{path.name} warned:\n{result.stderr[-3000:]}"
    assert repo_snapshot() == before, f"{path.name} wrote files into the repository"
    saved = sorted(f.name for f in figures.iterdir())
    if "show(" in path.read_text():
        assert saved, f"{path.name} shows figures but saved none to TINYRNN_TUTORIAL_OUT"
        assert all(name.startswith(path.stem[:3]) and name.endswith(".png") for name in saved), saved


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_at_the_course_sizes(path, tmp_path):
    """Without quick mode: the course's 10000 series (about 8 minutes of CPU for all eleven)."""
    env = quick_env(tmp_path)
    del env["TINYRNN_QUICK"]
    result = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{path.name} failed:\n{result.stderr[-5000:]}"


def test_a_script_saves_no_figure_unless_asked(tmp_path):
    """Without TINYRNN_TUTORIAL_OUT a tutorial draws its figures and writes nothing anywhere;
    without a display or MPLBACKEND either, as on a server: matplotlib finds a backend itself."""
    env = quick_env(None)
    for name in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    before = set(tmp_path.iterdir())
    result = subprocess.run([sys.executable, str(TUTORIALS[0])], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_is_a_valid_notebook(path, tmp_path):
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    notebook = jupytext.read(path)
    nbformat.validate(notebook)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and notebook.cells[0].source.startswith("# "), "starts with a title"
    assert "code" in kinds and kinds.count("markdown") >= 5
    # the round trip through .ipynb, as a student opening it in Jupyter makes it
    ipynb = tmp_path / f"{path.stem}.ipynb"
    jupytext.write(notebook, ipynb)
    reread = nbformat.read(ipynb, as_version=4)
    nbformat.validate(reread)
    assert [cell.source for cell in reread.cells] == [cell.source for cell in notebook.cells]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_says_what_to_expect_and_reads_quick_mode(path):
    """Each tutorial states the expected result in a markdown cell before the code that produces it."""
    source = path.read_text()
    assert 'os.environ.get("TINYRNN_QUICK") == "1"' in source
    cells = re.split(r"^# %%", source, flags=re.MULTILINE)[1:]
    expect_cells = [i for i, cell in enumerate(cells)
                    if cell.startswith(" [markdown]") and re.search(r"\bexpect\b", cell, re.IGNORECASE)]
    assert len(expect_cells) >= 3, f"{path.name}: only {len(expect_cells)} markdown cells say what to expect"
    for i in expect_cells:
        assert i + 1 < len(cells) and not cells[i + 1].startswith(" [markdown]"), (
            f"{path.name}: an 'Expect' cell must be followed by the code that produces the result"
        )


def test_a_tutorial_executes_as_a_notebook(tmp_path, monkeypatch):
    """Through a real Jupyter kernel, when nbclient and ipykernel are installed: figures show inline."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    jupytext = pytest.importorskip("jupytext")
    from jupyter_client.kernelspec import NoSuchKernel

    for name, value in quick_env(None).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MPLBACKEND")  # as in Jupyter: the kernel picks the inline backend
    notebook = jupytext.read(TUTORIALS[0])
    client = nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except NoSuchKernel:
        pytest.skip("no python3 Jupyter kernel is installed")
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    shown = len(re.findall(r"^show\(", TUTORIALS[0].read_text(), flags=re.MULTILINE))
    assert len(images) == shown, f"expected {shown} inline figures, got {len(images)}"
    assert set(tmp_path.iterdir()) == set(), "a notebook run writes no files"


def test_stopping_the_cell_by_hand_tutorial_half_way_leaves_float32_on(monkeypatch, capsys):
    """Tutorial 03 computes in float64 inside ``with tinyrnn.float_precision(...)`` blocks: run cell by
    cell in this process, the training default (float32) is in force after every cell."""
    import numpy

    from tinyrnn import backend, seeding

    monkeypatch.setenv("TINYRNN_QUICK", "1")
    source = (TUTORIAL_DIR / "03_rnn_cell_by_hand.py").read_text()
    cells = [cell for cell in re.split(r"^# %%", source, flags=re.MULTILINE)[1:]
             if not cell.startswith(" [markdown]")]
    namespace = {"__name__": "__main__"}
    seeding_state, printoptions = seeding.get_state(), numpy.get_printoptions()
    try:
        assert backend.floatx() == numpy.float32
        for i, cell in enumerate(cells):
            exec(compile(cell, f"03_rnn_cell_by_hand.py, code cell {i}", "exec"), namespace)
            assert backend.floatx() == numpy.float32, f"code cell {i} leaves floatx at {backend.floatx()}"
    finally:
        seeding.set_state(seeding_state)
        numpy.set_printoptions(**printoptions)
    assert namespace["layer"].params["kernel"].dtype == numpy.float64   # and it did compute in float64
    assert namespace["report"].checks, "the tutorial ran to its last check"
