"""The people page in headless Chromium: screenshots of the overview and of a person's
page at desktop (1200 px) and phone (400 px) widths, written into the folder
$FACECLUSTER_SCREENSHOTS (default: the test's tmp folder) for CI to keep; and the DOM with
JavaScript on (the script's additions) and off (everything is still there)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecluster import html as sheet
from facecluster.export import ReportPerson, write_sheet
from facecluster.suggest import Suggestion

from .test_export import AJ1, AJ_BIG, CLINTON, face, make_grouping
from .test_export import library as library  # noqa: F401  (the fixture)
from .test_page import parse

pytestmark = [pytest.mark.shared_data, pytest.mark.browser]
DESKTOP, PHONE = (1200, 900), (400, 900)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--force-color-profile=srgb",
        "--virtual-time-budget=10000",
        f"--user-data-dir={profile}",
        *args,
    ]
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def screenshot(browser: str, tmp: Path, page: Path, size: tuple[int, int], name: str) -> Path:
    folder = Path(os.environ.get("FACECLUSTER_SCREENSHOTS") or tmp / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{name}.png"
    shot.unlink(missing_ok=True)
    run = run_chromium(
        browser,
        tmp / "profile",
        f"--screenshot={shot}",
        f"--window-size={size[0]},{size[1]}",
        page.as_uri(),
    )
    assert shot.is_file(), f"no screenshot; chromium said:\n{run.stderr[-2000:]}"
    return shot


def photo_pixels(shot: Path, size: tuple[int, int]) -> np.ndarray:
    """Where the screenshot shows photo pixels: the page's own palette is greys (and one
    blue); skin, hair and backgrounds are not."""
    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    assert rgb.shape[:2] == (size[1], size[0])
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert colours > 5_000, f"{shot.name} looks blank or has no photos ({colours} colours)"
    return (rgb.max(axis=2) - rgb.min(axis=2)) > 30


@pytest.fixture
def browser() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("headless browser test needs Chromium: apt-get install chromium")
    return found


def test_page_in_headless_chromium(browser: str, library: Path, tmp_path: Path) -> None:
    weird = library / 'we"ird&<dir>' / "<img src=x onerror=alert(1)>.jpg"
    weird.parent.mkdir()
    shutil.copy2(library / CLINTON, weird)
    evil_face = replace(face(library, 11, CLINTON, distance=0.3), photo=str(weird))
    evil = ReportPerson(5, "<script>alert(1)</script>", (evil_face,))
    base = make_grouping(library)
    more = tuple(face(library, i, rel, 0, 0.5) for i, rel in ((21, AJ1), (22, AJ_BIG), (23, AJ1)))
    angelina = replace(base.persons[0], faces=base.persons[0].faces + more)  # a row of faces
    maybe = (Suggestion(1, 3, 0.1, 1, 6, "Angelina Jolie", "Madonna", 6, 3),)
    persons = (angelina, *base.persons[1:], evil)
    grouping = replace(base, persons=persons, suggestions=maybe)
    one = write_sheet(grouping, tmp_path / "one")
    per = write_sheet(grouping, tmp_path / "per", pages="per-person")

    # Screenshots: the overview (one page) and a person's page, desktop and phone.
    for page, name in ((one.index, "overview"), (per.out_dir / "people/person-1.html", "person")):
        desk = photo_pixels(screenshot(browser, tmp_path, page, DESKTOP, name), DESKTOP)
        assert desk.sum() > 15_000, f"{name}: thumbnails did not render"
        phone = photo_pixels(screenshot(browser, tmp_path, page, PHONE, f"{name}-phone"), PHONE)
        assert phone.sum() > 10_000, f"{name}: thumbnails did not render on a phone"
        # The phone layout fills the width: photos reach into the right tenth of the screen.
        assert phone[:, 340:].sum() > 1000, f"{name}: the phone layout leaves the right empty"

    # The DOM after the script ran: every person reachable from the overview, the script's
    # additions there, no absolute path, the page within its size budget.
    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", one.index.as_uri())
    page = parse(dom.stdout)
    sections = ["maybe", "person-1", "person-7", "person-3", "person-4", "person-5", "unknown"]
    assert page.sections == sections, dom.stderr[-2000:]
    assert sorted(page.cards) == sorted(f"#{s}" for s in sections[1:])
    assert len(page.tiles) == 14 and len(page.tile_labels) == 14
    assert all(str(i["src"]).startswith("thumbs/face_") for i in page.imgs)
    assert '<input type="search" id="filter"' in dom.stdout and "hidden" not in dom.stdout.split(
        'id="filter"'
    )[1].split(">")[0]
    # A copy button on each command (4 a person, 1 for the unknown faces), "Select faces"
    # on each section whose commands take face ids.
    assert page.text.count("copy") == 4 * 5 + 1 and page.text.count("Select faces") == 6
    assert str(tmp_path) not in dom.stdout and "file:" not in dom.stdout
    assert "<script>alert(1)</script>" in " ".join(page.text)  # rendered as text
    assert not {"iframe"} & set(page.tags) and page.tags.count("script") == 1
    budget = 3000 + 6 * sheet.HTML_BYTES_PER_PERSON + len(page.tiles) * sheet.HTML_BYTES_PER_FACE
    assert one.index.stat().st_size <= budget

    # Without the script (JavaScript off, or page.js not loading): the same people, faces
    # and commands, only the script's extras gone; and it still renders.
    bare = tmp_path / "bare"
    shutil.copytree(one.out_dir, bare)
    (bare / "page.js").write_text("")
    off = run_chromium(browser, tmp_path / "profile", "--dump-dom", (bare / "index.html").as_uri())
    quiet = parse(off.stdout)
    assert quiet.sections == sections and len(quiet.tiles) == 14
    assert quiet.codes == page.codes and "button" not in quiet.tags
    assert "facecluster people merge 1 3" in quiet.codes
    shot = screenshot(browser, tmp_path, bare / "index.html", DESKTOP, "overview-no-script")
    assert photo_pixels(shot, DESKTOP).sum() > 15_000


# What the script does, driven from a second script on a copy of the page: the results
# go into an attribute that --dump-dom shows.
DRIVE = """
var out = {}, doc = document;
var filter = doc.getElementById("filter");
filter.value = "madonna";
filter.dispatchEvent(new Event("input"));
out.shown = [].filter.call(doc.querySelectorAll("[data-name]"), function (el) {
  return !el.hidden;
}).map(function (el) { return el.id || el.querySelector("a").getAttribute("href"); });
filter.value = "";
filter.dispatchEvent(new Event("input"));
var sec = doc.getElementById("person-1");
sec.querySelector(".tools button").click();
var tiles = sec.querySelectorAll(".f");
tiles[0].click(); tiles[2].click();
out.split = [].map.call(sec.querySelectorAll(".cmds code"), function (c) {
  return c.textContent;
});
out.url = location.pathname.split("/").pop();
out.focus = [];
for (var i = 0; i < 2; i++) {
  doc.dispatchEvent(new KeyboardEvent("keydown", {key: "j", bubbles: true}));
  out.focus.push(doc.activeElement.closest("section").id);
}
doc.body.setAttribute("data-results", JSON.stringify(out));
"""


def test_page_script_filters_selects_and_steps(
    browser: str, library: Path, tmp_path: Path
) -> None:
    stats = write_sheet(make_grouping(library), tmp_path / "s")
    index = stats.index.read_text("utf-8")
    (tmp_path / "s" / "drive.js").write_text(DRIVE)
    driven = tmp_path / "s" / "driven.html"
    driven.write_text(index.replace("</head>", '<script src="drive.js" defer></script></head>'))
    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", driven.as_uri())
    body = dom.stdout.split("<body", 1)[1].split(">", 1)[0]
    assert "data-results" in body, dom.stderr[-2000:]
    raw = body.split('data-results="', 1)[1].split('"', 1)[0]
    results = json.loads(raw.replace("&quot;", '"').replace("&amp;", "&"))
    # Filtering by name keeps both Madonnas (card and section each), hides the rest.
    assert sorted(results["shown"]) == sorted(
        ["#person-3", "#person-4", "person-3", "person-4"]
    ), results
    # Selecting faces 1 and 3 fills their ids into the split and remove-face commands.
    assert 'facecluster people split 1 1 3 --name "NAME"' in results["split"]
    assert "facecluster people remove-face 1 3" in results["split"]
    assert results["focus"] == ["person-1", "person-7"]  # j, j: the next person each time
    assert dom.stdout.count('class="f sel"') == 2
