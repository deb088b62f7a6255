"""`tinct study`: the Turing-test server (API and a participant in chromium), the answers CSV and the report."""
import csv
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tinct.cli import main
from tinct.study import AnswerLog, StudyConfig, prepare, wilson_interval
from tinct.study.answers import COLUMNS
from tinct.study.app import Study, create_study_app

from .conftest import gradient_photo
from .test_serve import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ServerThread


@pytest.fixture
def truth_dir(tmp_path):
    d = tmp_path / "truth"
    d.mkdir()
    for i in range(5):
        Image.fromarray(gradient_photo(60 + 4 * i, 80, seed=i)).save(d / f"photo{i}.png")
    return d


@pytest.fixture
def study(truth_dir, tmp_path, tiny_model_path):
    cfg = StudyConfig(truth=[str(truth_dir)], models=[str(tiny_model_path)], answers=str(tmp_path / "answers.csv"),
                      size=64)
    pairs = prepare(cfg, log=lambda m: None)
    return Study(pairs, cfg, AnswerLog(cfg.answers)), cfg


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_pairs_share_size_and_lightness_and_are_saved_for_the_report(study, tmp_path):
    s, cfg = study
    assert len(s.pairs) == 5 and s.models == ["tiny"]
    for p in s.pairs:
        import io
        real = np.asarray(Image.open(io.BytesIO(p.truth_png)))
        fake = np.asarray(Image.open(io.BytesIO(p.fakes["tiny"])))
        assert real.shape == fake.shape and max(real.shape[:2]) == 64
    saved = sorted(x.name for x in (tmp_path / "answers_pairs").iterdir())
    assert saved[:2] == ["photo0.png.tiny.png", "photo0.png.truth.png"] and len(saved) == 10


def test_api_hides_the_truth_and_other_participants(study):
    s, cfg = study
    with TestClient(create_study_app(s)) as c:
        a = c.post("/api/start").json()
        b = c.post("/api/start").json()
        assert a["participant"] != b["participant"] and a["total"] == 5
        t = c.get("/api/next", params={"participant": a["participant"]}).json()
        assert set(t) == {"trial", "left", "right", "index", "total", "show_seconds"}  # no photo, model or side
        assert "photo" not in t["left"] + t["right"] and "tiny" not in t["left"] + t["right"]
        assert c.get(t["left"]).headers["content-type"] == "image/png"
        # b cannot answer a's pair; a bad choice is refused; nothing is written
        r = c.post("/api/answer", json={"participant": b["participant"], "trial": t["trial"], "choice": "left"})
        assert r.status_code == 409 and "error" in r.json()
        r = c.post("/api/answer", json={"participant": a["participant"], "trial": t["trial"], "choice": "up"})
        assert r.status_code == 400
        assert not Path(cfg.answers).exists()
        r = c.post("/api/answer", json={"participant": a["participant"], "trial": t["trial"], "choice": "left",
                                        "response_ms": 800})
        assert r.json() == {"answered": 1, "total": 5}  # and not whether it was right
        assert c.get(t["left"]).status_code == 404     # an answered pair's images are gone
        again = c.post("/api/answer", json={"participant": a["participant"], "trial": t["trial"], "choice": "left"})
        assert again.status_code == 409
        for path in ("/openapi.json", "/docs", "/static/../pairs.py", "/api/image/x"):
            assert c.get(path).status_code == 404
    rows = read_rows(cfg.answers)
    assert len(rows) == 1 and rows[0]["participant"] == a["participant"] and rows[0]["response_ms"] == "800"


def test_answers_csv_is_continued_or_refused(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("name,score\nx,1\n")
    from tinct.errors import TinctError
    with pytest.raises(TinctError, match="not a tinct study answers file"):
        AnswerLog(other)
    log = AnswerLog(tmp_path / "a.csv")
    row = dict.fromkeys(COLUMNS, "")
    row.update(participant="p", photo="x.png", model="m", real_side="left", chosen_side="right", fooled=1)
    log.append(row)
    log.append(row)
    AnswerLog(tmp_path / "a.csv").append(row)  # a restarted server continues the file
    text = (tmp_path / "a.csv").read_text()
    assert text.count("time_utc") == 1 and len(read_rows(tmp_path / "a.csv")) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def write_answers(path, answers):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for i, (photo, model, fooled) in enumerate(answers):
            real = "left" if i % 2 else "right"
            chosen = real if not fooled else ("right" if real == "left" else "left")
            w.writerow({"time_utc": "2026-01-01T00:00:00+00:00", "participant": f"p{i % 3}", "trial": i + 1,
                        "photo": photo, "model": model, "real_side": real, "chosen_side": chosen,
                        "fooled": int(fooled), "response_ms": 1000, "shown_seconds": ""})


def test_wilson_interval_by_hand():
    # 3 of 5: p = 0.6, z = 1.96: centre (0.6 + 1.9208/5) / (1 + 3.8415/5) = 0.5566, half 0.3258
    low, high = wilson_interval(3, 5)
    assert (round(low, 4), round(high, 4)) == (0.2307, 0.8824)
    low, high = wilson_interval(0, 4)  # centre = half = (3.8415/8) / (1 + 3.8415/4) = 0.2450
    assert (low, round(high, 4)) == (0.0, 0.4899)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_report_counts_intervals_and_picture(tmp_path, capsys):
    path = tmp_path / "answers.csv"
    write_answers(path, [("a.jpg", "default", 1), ("b.jpg", "default", 1), ("c.jpg", "default", 0),
                         ("a.jpg", "default", 1), ("b.jpg", "default", 0),
                         ("a.jpg", "mine", 0), ("b.jpg", "mine", 0), ("c.jpg", "mine", 0), ("c.jpg", "mine", 0)])
    folder = tmp_path / "answers_pairs"
    folder.mkdir()
    for photo in ("a.jpg", "b.jpg", "c.jpg"):
        for label in ("truth", "default", "mine"):
            Image.fromarray(gradient_photo(30, 40, seed=len(label))).save(folder / f"{photo}.{label}.png")
    with pytest.raises(SystemExit) as e:
        main(["study", "--report", str(path)])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "9 answers from 3 participants" in out
    assert "| default | 5 | 3 | 60.0% | 23.1% - 88.2% |" in out   # 3 of 5, Wilson by hand above
    assert "| mine | 4 | 0 | 0.0% | 0.0% - 49.0% |" in out        # 0 of 4
    pic = tmp_path / "answers_convincing.png"
    assert pic.is_file() and "answers_convincing.png" in out
    assert Image.open(pic).size == (2 * 192, 6 * (192 + 34))       # 3 most + 3 least convincing pairs


def test_report_refuses_what_is_not_an_answers_file(tmp_path, capsys):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit) as e:
        main(["study", "--report", str(bad)])
    assert e.value.code == 2 and "not a tinct study answers file" in capsys.readouterr().err


def test_five_pairs_in_chromium_end_up_in_the_csv(study):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run should install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright
    s, cfg = study
    problems, clicks = [], ["left", "right", "right", "left", "left"]
    with ServerThread(create_study_app(s)) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(180_000)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(srv.url + "/")
            page.wait_for_selector("#start:not([disabled])")
            page.click("#start")
            for i, side in enumerate(clicks):
                # (no wait_for_function: its polling evaluates strings, which the page's CSP forbids)
                expect(page.locator("#index")).to_have_text(str(i + 1))
                page.wait_for_selector(".pair:not(.concealed)")
                with page.expect_response("**/api/answer"):
                    if i == 3:
                        page.keyboard.press("ArrowLeft")
                    else:
                        page.click(f"#{side}")
            page.wait_for_selector("#done:not([hidden])")
            assert page.text_content("#answered") == "5"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "study_done.png"))
        finally:
            browser.close()
    assert not problems, problems
    rows = read_rows(cfg.answers)
    assert [r["chosen_side"] for r in rows] == clicks and [r["trial"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert len({r["participant"] for r in rows}) == 1 and len({r["photo"] for r in rows}) == 5
    assert all(r["fooled"] == str(int(r["chosen_side"] != r["real_side"])) and r["model"] == "tiny" for r in rows)
