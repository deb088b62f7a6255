"""The page in Debian's chromium: suggestions at a click, editing points (move, delete, undo), global hints,
and errors in plain words at the drop zone."""
import os
from pathlib import Path

import pytest
from PIL import Image

from tinct.serve import ServeConfig, create_app
from tinct.serve import work

from .test_serve import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ServerThread, _browser_photo


def need_chromium():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run should install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


def open_page(p, srv, problems):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(180_000)  # a loaded CI machine runs the network slowly
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "410" not in m.text else None)
    page.goto(srv.url + "/")
    # (no wait_for_function: when it has to poll it evaluates a string, which the page's CSP forbids)
    page.wait_for_selector("#model option", state="attached")
    return browser, page


def test_suggest_pick_move_delete_undo_in_chromium(tmp_path, monkeypatch):
    need_chromium()
    from playwright.sync_api import expect, sync_playwright
    photo = _browser_photo(tmp_path)
    w, h = Image.open(photo).size
    app = create_app(ServeConfig(models=["default"], workers=1, queue=4))
    problems, jobs, suggested = [], [], []
    real_run, real_suggest = work.run, work.suggest
    monkeypatch.setattr(work, "run", lambda job: jobs.append(job) or real_run(job))
    monkeypatch.setattr(work, "suggest", lambda job, x, y: suggested.append((job, x, y)) or real_suggest(job, x, y))
    with ServerThread(app) as srv, sync_playwright() as p:
        browser, page = open_page(p, srv, problems)
        try:
            with page.expect_response("**/api/colorize"):
                page.set_input_files("#file", str(photo))
            page.wait_for_selector("#download:not(.disabled)")
            assert jobs[-1].image is not None  # the first request uploads the photo

            # click a spot: the model's suggestions for it, with their probabilities, and the gamut
            frame = page.locator("#frame").bounding_box()
            with page.expect_response("**/api/suggest") as sug:
                page.mouse.click(frame["x"] + frame["width"] * 0.3, frame["y"] + frame["height"] * 0.6)
            offered = sug.value.json()["suggestions"]
            assert 1 <= len(offered) <= 6 and suggested[-1][0].photo is not None  # by id, not re-uploaded
            assert abs(suggested[-1][1] - 0.3 * w) <= 2 and abs(suggested[-1][2] - 0.6 * h) <= 2
            buttons = page.locator("#suggestions .suggestion")
            assert buttons.count() == len(offered) and "%" in buttons.first.text_content()

            # pick the second suggestion (or the only one): a point of that color, and the photo updates
            choice = offered[min(1, len(offered) - 1)]["color"]
            with page.expect_response("**/api/colorize") as upd:
                buttons.nth(min(1, len(offered) - 1)).click()
            assert upd.value.status == 200
            job = jobs[-1]
            assert job.image is None and job.photo is not None  # edits send the photo's id only
            assert [pt["color"] for pt in job.points] == [choice]
            x0, y0 = job.points[0]["x"], job.points[0]["y"]
            expect(page.locator("#status")).to_contain_text("1 color point")

            # resize it: 9x9 cells
            with page.expect_response("**/api/colorize"):
                page.eval_on_selector("#pointSize", "el => { el.value = '9'; el.dispatchEvent(new Event('input')); "
                                                    "el.dispatchEvent(new Event('change')); }")
            r9 = jobs[-1].points[0]["radius"]
            assert r9 > 3 * 1 and page.text_content("#sizeOut") == "9×9"

            # drag it elsewhere
            frame = page.locator("#frame").bounding_box()
            dot = page.locator(".point").bounding_box()
            with page.expect_response("**/api/colorize"):
                page.mouse.move(dot["x"] + dot["width"] / 2, dot["y"] + dot["height"] / 2)
                page.mouse.down()
                page.mouse.move(frame["x"] + frame["width"] * 0.8, frame["y"] + frame["height"] * 0.2, steps=6)
                page.mouse.up()
            moved = jobs[-1].points[0]
            assert abs(moved["x"] - 0.8 * w) <= 3 and abs(moved["y"] - 0.2 * h) <= 3 and moved["color"] == choice

            # undo the move: back where it was
            with page.expect_response("**/api/colorize"):
                page.click("#undo")
            assert (jobs[-1].points[0]["x"], jobs[-1].points[0]["y"]) == (x0, y0)
            with page.expect_response("**/api/colorize"):
                page.click("#redo")
            assert abs(jobs[-1].points[0]["x"] - 0.8 * w) <= 3

            # select it and delete it: no points left; undo brings it back
            page.locator(".point").click()
            page.wait_for_selector("#deletePoint:not([hidden])")
            with page.expect_response("**/api/colorize"):
                page.click("#deletePoint")
            assert jobs[-1].points is None and page.locator(".point").count() == 0
            with page.expect_response("**/api/colorize"):
                page.keyboard.press("Control+z")
            assert len(jobs[-1].points) == 1 and page.locator(".point").count() == 1

            # global hints: a palette typed as colors, and saturation
            page.fill("#paletteText", "#2050c0, #c08020")
            with page.expect_response("**/api/colorize"):
                page.click("#paletteForm button")
            assert jobs[-1].palette is not None and jobs[-1].palette.shape == (2, 2)
            assert page.locator("#palette .palette-color").count() == 2
            with page.expect_response("**/api/colorize"):
                page.eval_on_selector("#sat", "el => { el.value = '1.5'; el.dispatchEvent(new Event('input')); "
                                              "el.dispatchEvent(new Event('change')); }")
            assert jobs[-1].saturation == 1.5

            # the photo id expired on the server: the page uploads the photo again, silently
            app.state.photos._items.clear()
            with page.expect_response(lambda r: "/api/colorize" in r.url and r.status == 200):
                page.click("#undo")
            assert jobs[-1].image is not None
            page.wait_for_selector("#viewError", state="hidden")

            ARTIFACTS.mkdir(exist_ok=True)
            page.locator(".point").click()
            page.wait_for_selector("#suggestions .suggestion")
            page.screenshot(path=str(ARTIFACTS / "serve_points.png"))
        finally:
            browser.close()
    assert not problems, problems


def test_errors_in_plain_words_at_the_drop_zone(tmp_path):
    need_chromium()
    from playwright.sync_api import sync_playwright
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is a text file, not a picture\n" * 20)
    app = create_app(ServeConfig(models=["default"], workers=1, queue=4))
    problems = []
    with ServerThread(app) as srv, sync_playwright() as p:
        browser, page = open_page(p, srv, problems)
        problems.clear()  # the browser logs the failed request itself; that is not a page error
        try:
            # the model is described in plain words; the details are behind a toggle
            info = page.text_content("#modelInfo")
            assert "takes color points" in info and "unet" not in info and "classification" not in info
            assert not page.is_visible("#modelTech") and page.get_attribute("#modelDetails", "open") is None
            page.click("#modelDetails summary")
            assert "unet" in page.text_content("#modelTech")
            assert "detail" in page.text_content("#rfHelp").lower() and "slower" in page.text_content("#rfHelp")

            with page.expect_response("**/api/colorize") as r:
                page.set_input_files("#file", str(bad))
            assert r.value.status == 415 and r.value.json()["error"].startswith("image:")
            page.wait_for_selector("#dropError:not([hidden])")
            msg = page.text_content("#dropError")
            assert msg == "This file is not a photo tinct can open. Try a JPEG or PNG file."
            assert page.is_visible("#drop") and not page.is_visible("#viewer")
            # it is inside the drop zone, where the eye is
            drop, err = page.locator("#drop").bounding_box(), page.locator("#dropError").bounding_box()
            assert drop["y"] <= err["y"] and err["y"] + err["height"] <= drop["y"] + drop["height"]
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve_drop_error.png"))
        finally:
            browser.close()
    assert not [m for m in problems if "Failed to load resource" not in m], problems
