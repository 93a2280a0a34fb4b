#!/usr/bin/env python3
"""Redraw docs/images/web_gallery.jpg: serve.py's gallery page in headless chromium, as a user's checkout shows it.

A folder like a user's checkout (made in a temporary folder and run from there, so the page names the gallery
as a user sees it: `output/embeddings.pickle`, not a temporary path): `dataset/` with obama and biden from
../shared/faces/known and lin (faces/probe/lin-manuel-miranda.png), enrolled by
`extract_embeddings.py --model sface`, then `serve.py --model sface` and its /gallery page photographed
by Debian's chromium through Selenium (requirements-dev.txt). Model files from models/ if there, else
../shared/models.

Example:
  python bench/web_screenshots.py docs/images/web_gallery.jpg
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from benchmark import ROOT, SHARED, model_paths

WINDOW = (1400, 860)
START_SECONDS = 180  # loading the models on a busy shared machine


def checkout_like(folder: Path) -> None:
    """dataset/ (copies: the server may write there) and output/embeddings.pickle, enrolled as a user would."""
    for person in ("obama", "biden"):
        shutil.copytree(SHARED / "faces" / "known" / person, folder / "dataset" / person)
    (folder / "dataset" / "lin").mkdir()
    shutil.copy(SHARED / "faces" / "probe" / "lin-manuel-miranda.png", folder / "dataset" / "lin")
    subprocess.run([sys.executable, str(ROOT / "extract_embeddings.py"), *model_arguments(), "--quiet"],
                   cwd=folder, check=True, capture_output=True)


def model_arguments() -> list[str]:
    folder, embedder_file, _ = model_paths("sface")
    return ["--model", "sface", "--detector", str(folder), "--embedding-model", str(embedder_file)]


def served_url(process: subprocess.Popen) -> str:
    """The page's URL, from the line serve.py prints when it is ready."""
    deadline = time.monotonic() + START_SECONDS
    for line in process.stdout:
        if line.startswith("facerec web page: "):
            return line.split(": ", 1)[1].strip()
        if time.monotonic() > deadline:
            break
    raise SystemExit(f"serve.py printed no URL: {process.stderr.read()}")


def screenshot(url: str, target: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(url.rstrip("/") + "/gallery")
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "person-lin"))
            time.sleep(1)  # the photos' thumbnails
            png = Path(profile) / "gallery.png"
            driver.save_screenshot(str(png))
        finally:
            driver.quit()
        cv2.imwrite(str(target), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 90])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="the screenshot to write (.jpg or .png)")
    args = parser.parse_args(argv)
    target = args.target.resolve()
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir)
        checkout_like(folder)
        process = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), *model_arguments(), "--port", "0"],
                                   cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            screenshot(served_url(process), target)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"wrote {args.target}: the gallery page of serve.py --model sface (obama, biden, lin)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
