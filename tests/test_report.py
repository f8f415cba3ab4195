"""`ganforge report`: every section of a real run, self-containment, the config difference
table, runs without metrics, bad input, and a render in headless Chromium."""

import base64
import io
import json
import shutil
from html.parser import HTMLParser

import pytest
import torch
from PIL import Image
from tests.test_training import TINY_DCGAN

from clihelp import run_cli, user_error
from ganforge import config as configlib
from ganforge.errors import GanforgeError
from ganforge.report import browser
from ganforge.report.build import write_report
from ganforge.report.html import page
from ganforge.report.sections import RUN_SECTIONS, pick_evenly
from ganforge.report.series import group_of, training_groups
from ganforge.training.classifier import train_classifier
from ganforge.training.loop import train

# 6 steps, a grid every 2, a metrics line every step, a checkpoint every 2 (TINY_DCGAN)
SHORT = [*TINY_DCGAN, "train.steps=6", "train.sample_every=2", "log.every=1"]


class Page(HTMLParser):
    """The parts of a report the tests look at: sections, images, links, table rows."""

    def __init__(self, text: str) -> None:
        """Parse text at once."""
        super().__init__()
        self.sections: list[tuple[str, str]] = []  # (id, data-section)
        self.open: list[str] = []  # ids of the sections we are inside
        self.images: list[dict[str, str]] = []  # attrs + the innermost section id
        self.urls: list[str] = []  # every src and href
        self.tags: set[str] = set()
        self.rows: dict[str, list[list[str]]] = {}  # section id -> rows of cell texts
        self.cell: list[str] | None = None
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        """Record sections, images, URLs; open table rows and cells."""
        attrs = dict(attrs)
        self.tags.add(tag)
        self.urls += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "section":
            self.sections.append((attrs.get("id"), attrs.get("data-section")))
            self.open.append(attrs.get("id"))
        elif tag == "img":
            self.images.append({**attrs, "in": self.open[-1] if self.open else None})
        elif tag == "tr":
            self.rows.setdefault(self.open[-1], []).append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        """Close sections and cells."""
        if tag == "section":
            self.open.pop()
        elif tag in ("td", "th") and self.cell is not None:
            self.rows[self.open[-1]][-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        """Keep all text, and the text of the open cell."""
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)

    def kinds(self, prefix: str) -> set[str]:
        """data-section of every section whose id starts with prefix."""
        return {kind for anchor, kind in self.sections if anchor.startswith(prefix)}

    def images_in(self, anchor: str) -> list[dict[str, str]]:
        """Images directly inside the section with this id."""
        return [i for i in self.images if i["in"] == anchor]


def png_of(src: str) -> Image.Image:
    """The image inside a data: URI, which must be a base64 PNG."""
    head, _, payload = src.partition(",")
    assert head == "data:image/png;base64", src[:40]
    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    assert image.format == "PNG"
    image.load()
    return image


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short DCGAN runs on a Fashion-MNIST slice: 'fm' evaluates FID (classifier features)
    at steps 3 and 6; 'hinge' differs in loss.name and does not evaluate."""
    root = tmp_path_factory.mktemp("report")
    features = root / "fm.safetensors"
    train_classifier("fashion-mnist", features, epochs=1, limit=256, progress=False)
    evaluated = [*SHORT, "eval.every=3", "eval.metrics=[fid]", "eval.n=64",
                 f"eval.features=classifier:{features}"]
    train(configlib.load(None, evaluated), root / "fm", progress=False)
    train(configlib.load(None, [*SHORT, "loss.name=hinge"]), root / "hinge", progress=False)
    return root / "fm", root / "hinge"


@pytest.fixture(scope="module")
def one_report(runs, tmp_path_factory):
    """The report of the evaluated run alone: (path, text, parsed)."""
    out = tmp_path_factory.mktemp("one") / "report.html"
    write_report([runs[0]], out)
    text = out.read_text()
    return out, text, Page(text)


def test_one_run_report_has_every_section(runs, one_report):
    _, text, parsed = one_report
    assert parsed.kinds("run-1") == {"run", *RUN_SECTIONS}
    assert not parsed.kinds("comparison")  # one run: nothing to compare
    captions = [i["alt"] for i in parsed.images_in("run-1-samples")]
    assert captions == ["step 2", "step 4", "step 6"]  # every grid, oldest first
    # a plain DCGAN logs no loss terms: four panels
    legend = {row[0]: row[1] for row in parsed.rows["run-1-curves"][1:]}
    assert legend["losses"] == "d_loss, g_loss"
    assert legend["D outputs"] == "d_real, d_fake, d_accuracy"
    assert legend["gradient norms"] == "d_grad_norm, g_grad_norm"
    assert legend["throughput"] == "img_per_s"
    assert len(parsed.images_in("run-1-curves")) == len(legend)
    assert [i["alt"] for i in parsed.images_in("run-1-evaluation")] == ["fid over training"]
    final = parsed.rows["run-1-final-metrics"]
    metrics = json.loads((runs[0] / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["step"] == 6 and "eval/fid" in metrics  # the last row is the eval at 6
    assert ["fid", f"{metrics['eval/fid']:.4g}"] in final
    assert "The last evaluation, at step 6." in text
    best = json.loads((runs[0] / "checkpoints" / "best.json").read_text())["best"]
    assert [best["metric"], f"{best['value']:.4g}", str(best["step"]),
            "checkpoints/best.json + best.safetensors"] in final
    assert any(row[0] == "features" and "classifier:" in row[1] for row in final)
    assert "eval:\n  every: 3" in text  # the config as written
    assert ["torch", torch.__version__] in parsed.rows["run-1-versions"]


def test_report_is_self_contained(runs, one_report):
    _, text, parsed = one_report
    assert parsed.tags.isdisjoint({"script", "link", "iframe", "object", "embed"})
    assert "url(" not in text and "@import" not in text
    for url in parsed.urls:  # images as data: URIs, links only within the page
        assert url.startswith(("data:image/png;base64,", "#")), url[:60]
    assert "http://" not in text and "https://" not in text
    images = [png_of(i["src"]) for i in parsed.images]
    assert len(images) == 3 + 4 + 1  # grids, curve panels, the fid panel
    grid = parsed.images_in("run-1-samples")[-1]["src"].partition(",")[2]
    assert base64.b64decode(grid) == (runs[0] / "samples" / "step-00000006.png").read_bytes()


def test_two_runs_show_only_the_config_keys_that_differ(runs, tmp_path, capsys):
    out = tmp_path / "two.html"
    code, stdout, _ = run_cli(capsys, "report", *runs, "--out", out)
    assert code == 0 and "for 2 runs: fm, hinge" in stdout
    parsed = Page(out.read_text())
    assert {"run", *RUN_SECTIONS} == parsed.kinds("run-1") == parsed.kinds("run-2")
    assert {"comparison", "config-differences", "final-summary", "last-grids",
            "overlaid-curves"} <= parsed.kinds("")
    header, *rows = parsed.rows["config-differences"]
    assert header == ["key", "fm", "hinge"]
    differing = {row[0]: row[1:] for row in rows}
    fm = configlib.load(runs[0] / "config.yaml")
    assert differing == {  # what the runs were trained with, and nothing they share
        "loss.name": [fm.loss.name, "hinge"],
        "eval.every": ["3", "0"],
        "eval.features": [fm.eval.features, "inception"],
        "eval.n": ["64", "null"],
    }
    assert '<td class="changed">hinge</td>' in out.read_text()
    assert [i["alt"] for i in parsed.images_in("last-grids")] == ["fm, step 6", "hinge, step 6"]
    header, fm_row, hinge_row = parsed.rows["final-summary"]
    assert header == ["run", "last step", "last evaluation", "fid", "best"]
    assert fm_row[:3] == ["fm", "6", "6"] and fm_row[4].startswith("fid ")
    assert hinge_row == ["hinge", "6", "", "", ""]  # never evaluated
    overlaid = [i["alt"] for i in parsed.images_in("overlaid-curves")]
    assert overlaid == ["eval/fid of every run", "d_loss of every run", "g_loss of every run"]


def test_identical_configs_have_no_difference_table(runs, tmp_path):
    copy = tmp_path / "again" / "fm"  # same folder name: labels from the paths
    shutil.copytree(runs[0], copy)
    out = write_report([runs[0], copy], tmp_path / "same.html").out
    parsed = Page(out.read_text())
    assert "config-differences" not in parsed.rows  # no table at all
    assert "The configs are identical." in "".join(parsed.text)
    labels = [row[0] for row in parsed.rows["final-summary"][1:]]
    assert len(set(labels)) == 2 and all("fm" in label for label in labels), labels


def test_text_from_the_run_is_escaped(runs, tmp_path):
    odd = tmp_path / "a<b>&c"
    shutil.copytree(runs[1], odd)
    with open(odd / "config.yaml", "a") as handle:
        handle.write("# <script>alert(1)</script>\n")
    text = write_report([odd], tmp_path / "odd.html").out.read_text()
    assert "<script>" not in text and "<b>" not in text
    assert "# &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Run: a&lt;b&gt;&amp;c" in text


def test_a_run_without_metrics_gets_a_report_that_says_so(runs, tmp_path, capsys):
    fresh = tmp_path / "fresh"  # as a run is before its first log line and checkpoint
    fresh.mkdir()
    shutil.copy(runs[0] / "config.yaml", fresh / "config.yaml")
    (fresh / "metrics.jsonl").write_text("")
    code, _, err = run_cli(capsys, "report", fresh, "--out", tmp_path / "r.html")
    assert code == 0
    assert "note: fresh: no metrics, no evaluation, no sample grids, no checkpoint yet" in err
    parsed = Page((tmp_path / "r.html").read_text())
    assert parsed.kinds("run-1") == {"run", *RUN_SECTIONS}
    words = " ".join(parsed.text)
    for said in ("No sample grids yet", "No metrics logged yet", "No evaluation yet",
                 "no checkpoint yet"):
        assert said in words
    assert not parsed.images


def test_whatever_a_task_logs_is_plotted(runs, tmp_path):
    other = tmp_path / "cyclegan-like"  # keys of another task, written by hand
    other.mkdir()
    shutil.copy(runs[1] / "config.yaml", other / "config.yaml")
    rows = [
        {"step": 1, "d_A_loss": 0.7, "d_A_real": 0.6, "g_cycle": 2.0, "g_loss": 3.0,
         "new_thing": 1.0},
        {"step": 2, "d_A_loss": float("nan"), "d_A_real": 0.5, "g_cycle": 1.5, "g_loss": 2.5},
        {"step": 2, "eval/kid": 0.05, "eval/kid_std": 0.01, "eval/mode_histogram": [3, 1]},
        {"step": 3, "eval_skipped": "progressive growing at 8x8"},
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "g_lo'  # torn line
    (other / "metrics.jsonl").write_text(text)
    parsed = Page(write_report([other], tmp_path / "o.html").out.read_text())
    legend = {row[0]: row[1] for row in parsed.rows["run-1-curves"][1:]}
    assert legend == {"losses": "d_A_loss, g_loss", "loss terms": "g_cycle",
                      "D outputs": "d_A_real", "other": "new_thing"}
    assert len(parsed.images_in("run-1-curves")) == 4
    # kid_std is kid's band, not a panel of its own; the table lists both numbers
    assert [i["alt"] for i in parsed.images_in("run-1-evaluation")] == ["kid over training"]
    assert parsed.rows["run-1-final-metrics"][1:3] == [["kid", "0.05"], ["kid_std", "0.01"]]
    assert "Step 3: evaluation skipped, progressive growing at 8x8" in " ".join(parsed.text)
    for image in parsed.images:
        png_of(image["src"])


def test_what_is_not_a_run_is_refused_clearly(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    empty = tmp_path / "empty"
    empty.mkdir()
    err = user_error(capsys, "report", empty, "--out", out)
    assert "is not a ganforge run: config.yaml is missing" in err
    err = user_error(capsys, "report", tmp_path / "nope", "--out", out)
    assert "does not exist" in err
    checkpoint_file = runs[0] / "checkpoints" / "step-00000006.safetensors"
    err = user_error(capsys, "report", checkpoint_file, "--out", out)
    assert f"Did you mean its run directory '{runs[0]}'" in err
    err = user_error(capsys, "report", runs[0] / "samples", "--out", out)
    assert "config.yaml is missing" in err and f"Did you mean its run directory '{runs[0]}'" in err
    err = user_error(capsys, "report", runs[0].parent, "--out", out)
    assert f"ganforge report {runs[0]} {runs[1]}" in err  # the runs it holds
    err = user_error(capsys, "report", runs[0], runs[0], "--out", out)
    assert "given twice" in err
    assert not out.exists()


def test_out_is_never_overwritten_by_accident(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    out.write_text("keep me")
    assert "already exists. Pass --overwrite" in user_error(capsys, "report", runs[1], "--out",
                                                            out)
    err = user_error(capsys, "report", tmp_path / "nope", "--out", out, "--overwrite")
    assert "does not exist" in err and out.read_text() == "keep me"  # failed: left alone
    assert "is a directory" in user_error(capsys, "report", runs[1], "--out", tmp_path)
    code, _, _ = run_cli(capsys, "report", runs[1], "--out", out, "--overwrite")
    assert code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temps


def test_report_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, "report", "--help")
    assert exit_info.value.code == 0
    assert "ganforge report runs/fm --out fm.html" in capsys.readouterr().out


def test_keys_of_every_task_land_in_a_group():
    rows = [  # as pix2pix, cyclegan, semi-supervised and stabilized runs log them
        {"step": 1, "d_loss": 1.0, "g_loss": 2.0, "g_l1": 0.5, "g_adversarial": 0.7,
         "d_A_loss": 0.4, "d_A_real": 0.9, "d_B_fake": 0.1, "g_cycle": 3.0, "g_identity": 1.0,
         "d_class": 0.3, "r1": 0.01, "feature_matching": 0.2, "d_skips": 2.0,
         "d_grad_norm": 4.0, "img_per_s": 900.0, "new_thing": 1.0, "flag": True,
         "eval_skipped": "growing", "eval/fid": 12.0, "eval/mode_histogram": [1, 2]},
        {"step": 2, "d_loss": float("nan"), "later_key": 5.0},
    ]
    assert training_groups(rows) == {
        "losses": ["d_loss", "g_loss", "d_A_loss"],
        "loss terms": ["g_l1", "g_adversarial", "g_cycle", "g_identity", "d_class", "r1",
                       "feature_matching"],
        "D outputs": ["d_A_real", "d_B_fake"],
        "gradient norms": ["d_grad_norm"],
        "throughput": ["img_per_s"],
        "other": ["d_skips", "new_thing", "later_key"],
    }
    assert group_of("eval/fid") is None and group_of("step") is None


def test_many_grids_are_thinned_evenly_and_keep_the_last():
    assert pick_evenly(list(range(9))) == list(range(9))
    chosen = pick_evenly(list(range(40)))
    assert chosen == [0, 4, 9, 14, 19, 24, 29, 34, 39]


def test_chromium_renders_the_report_without_console_errors(one_report, tmp_path):
    try:
        chromium = browser.version()
    except GanforgeError as exc:
        pytest.fail(f"{exc} (This test renders the report in a real browser.)")
    print(chromium)
    path, _, parsed = one_report
    dom = browser.dump_dom(path)
    assert dom.console == [], dom.console
    rendered = Page(dom.stdout)
    assert rendered.kinds("run-1") == {"run", *RUN_SECTIONS}
    assert len(rendered.images) == len(parsed.images)
    shot = browser.screenshot(path, tmp_path / "report.png", size=(1200, 3000))
    assert shot.console == [], shot.console
    image = Image.open(tmp_path / "report.png").convert("L")
    assert image.size == (1200, 3000)
    low, high = image.getextrema()
    assert high - low > 100  # text and plots, not a blank page


def test_the_console_check_sees_errors(tmp_path):
    """The check above can fail: a page that loads from outside, or logs an error, is seen."""
    bad = tmp_path / "bad.html"  # the report's own CSP refuses the outside image
    bad.write_text(page("bad", "", '<img src="http://example.invalid/x.png" alt="x">'))
    try:
        lines = browser.dump_dom(bad).console
    except GanforgeError as exc:
        pytest.fail(str(exc))
    assert any("Content Security Policy" in line for line in lines), lines
    noisy = tmp_path / "noisy.html"
    noisy.write_text("<html><body><script>console.error('boom')</script></body></html>")
    assert any("boom" in line for line in browser.dump_dom(noisy).console)
