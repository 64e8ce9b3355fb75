"""The HTML dosimetry report: written by `deepdose demo` and `deepdose dose --report`, self-contained, correct
numbers, and rendered by a real browser (headless Chromium; the screenshot is kept as a CI artefact)."""
from __future__ import annotations

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import REPO_ROOT
from conftest import run_deepdose as deepdose

ARTIFACTS = REPO_ROOT / "Testing" / "artifacts"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class ReportParser(HTMLParser):
    """Checks that every element is closed in order, and collects images and the organ table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.stack, self.errors, self.images, self.rows = [], [], [], []
        self.in_organs = False
        self.tags = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "table" and "organs" in attrs.get("class", ""):
            self.in_organs = True
        if self.in_organs and tag == "tr":
            self.rows.append({})
        if self.in_organs and tag == "td" and "data-value" in attrs:
            self.rows[-1][attrs["data-field"]] = float(attrs["data-value"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_organs = False
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_report")
    # LED keeps this fixture fast; test_demo_command covers the demo's default method (Deep-dose).
    proc = deepdose("demo", "--out", out, "--quiet", "--method", "led")
    assert "report.html" in proc.stdout + proc.stderr
    return out


def test_demo_report_is_valid_self_contained_html(demo_report):
    path = demo_report / "report.html"
    text = path.read_text(encoding="utf-8")
    parser = parse(path)
    assert text.startswith("<!DOCTYPE html>") and parser.errors == [] and parser.stack == []
    assert {"html", "head", "body", "table", "figure"} <= parser.tags
    assert "script" not in parser.tags and "link" not in parser.tags  # no code, no external stylesheet
    pngs = [src for src in parser.images if src.startswith("data:image/png;base64,")]
    assert len(pngs) >= 3 and len(pngs) == len(parser.images)  # axial, coronal, DVH; nothing loaded from outside
    from PIL import Image

    for src in pngs:
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert image.format == "PNG" and min(image.size) > 200
    import DeepDoseLib

    for expected in (f"DeepDose version</th><td>{DeepDoseLib.__version__}", "Ga-68", "Local energy deposition",
                     "isodose lines at 10, 25, 50, 75, 90 %", "mGy/h", "Method and assumptions"):
        assert expected in text


def test_demo_report_organ_table_equals_organ_statistics(demo_report, demo_case):
    from DeepDoseLib.analysis.organs import organ_statistics
    from DeepDoseLib.dose import prepare_inputs

    dose = sitk.ReadImage(str(demo_report / "dose_rate.nii.gz"))
    density = prepare_inputs(demo_case.ct, demo_case.pet).density_g_per_cm3
    expected = organ_statistics(dose, demo_case.labels, demo_case.label_names, density)
    rows = [r for r in parse(demo_report / "report.html").rows if r]
    n_structures = len(np.unique(sitk.GetArrayViewFromImage(demo_case.labels))) - 1  # all labels but background
    assert len(rows) == len(expected) == n_structures
    for cells, stats in zip(rows, expected):
        for field in ("volume_mL", "mass_g", "mean_mass_weighted", "mean_voxel_weighted", "median", "min", "max",
                      "D98", "D50", "D2"):
            assert cells[field] == pytest.approx(getattr(stats, field), rel=1e-12), (stats.name, field)


def test_dose_command_writes_report_and_organ_table(demo_files, tmp_path):
    out, table, report = tmp_path / "dose.nii.gz", tmp_path / "organs.tsv", tmp_path / "report"
    proc = deepdose("dose", "--ct", demo_files["ct"], "--pet", demo_files["pet"], "--nuclide", "Lu177", "--out", out,
                    "--labels", demo_files["labels"], "--label-names", demo_files["label_names"],
                    "--organ-table", table, "--report", report, "--report-focus", 16, "--quiet")
    assert "report written" in proc.stderr
    parser = parse(report / "report.html")
    assert parser.errors == [] and len(parser.images) >= 3
    text = (report / "report.html").read_text(encoding="utf-8")
    assert "through the centre of label 16" in text and "Lu-177" in text and str(demo_files["pet"]) in text
    lines = [line.split("\t") for line in table.read_text().splitlines()]
    n_structures = len(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(demo_files["labels"]))))) - 1
    assert lines[0][0] == "organ" and len(lines) == 1 + n_structures
    row = [line[0] for line in lines[1:]].index("kidney_right_cortex")  # label 16 of the demo case
    kidney = dict(zip(lines[0], lines[1 + row]))
    html_kidney = [r for r in parser.rows if r][row]
    assert float(kidney["mean_mass_weighted_mGy_per_h"]) == pytest.approx(html_kidney["mean_mass_weighted"], rel=1e-5)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (apt-get install chromium): report screenshot not checked")


def _run_chromium(exe: str, page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *extra,
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=180)


def _console_errors(stderr: str) -> list:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.slow
def test_report_renders_in_headless_chromium(demo_report, tmp_path):
    exe = _chromium()
    # the detector itself: a page with a script error must be caught
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    proc = _run_chromium(exe, broken, tmp_path / "profile0", "--dump-dom")
    assert _console_errors(proc.stderr), "the console-error check would not see a JavaScript error"

    page = demo_report / "report.html"
    dom = _run_chromium(exe, page, tmp_path / "profile1", "--dump-dom")
    assert dom.returncode == 0 and "Organ and structure statistics" in dom.stdout and "kidney_left" in dom.stdout
    assert _console_errors(dom.stderr) == []
    shot = tmp_path / "report_screenshot.png"
    proc = _run_chromium(exe, page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,2000",
                         "--hide-scrollbars")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    assert _console_errors(proc.stderr) == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report_screenshot.png")

    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not blank
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    grey = (np.abs(r - g) < 6) & (np.abs(g - b) < 6) & (r > 60) & (r < 200)  # the CT under the dose
    slices = grey.sum(axis=1) > 100  # screen rows that show CT slices (no other grey areas on the page)
    assert slices.sum() > 150, "no CT slice visible in the first 2000 px"
    # colours of the dose wash and isodose lines (turbo map), on the rows of the slice figures: hot red/orange
    # and cyan; CT and page are grey, white and dark blue
    hot = ((r > 180) & (g < 140) & (b < 90))[slices]
    cool = ((g > 150) & (b > 120) & (r < 110))[slices]
    assert hot.sum() > 500 and cool.sum() > 200
