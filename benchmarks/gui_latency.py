"""The longest the GUI thread is blocked while a large enrolment and searches run.

Opens the real main window on a gallery under /tmp pre-filled with --synthetic faces (random
embeddings bound to the default model, so the index is the size of a sheriff's mugshot
gallery), then, through the window's own panels:
- starts an enrolment of a CSV manifest of real photos (../shared/faces plus flipped and
  shrunk copies written to /tmp, --copies per photo) from the Gallery tab's enrol panel;
- while it runs, opens a probe photo in the Search tab and searches it, again and again.
A 10 ms QTimer on the GUI thread records every gap between its ticks; a stall is a gap longer
than the interval. Prints one JSON line: max_stall_ms (the goal: under 100), the 99th
percentile gap, enrolment photos/s, and search count and latency (click to results shown).

Run: python benchmarks/gui_latency.py [--synthetic 300000] [--copies 3]
(offscreen unless QT_QPA_PLATFORM is set; data is deleted at the end)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from synthetic_gallery import fill_random

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "faces"
TICK_MS = 10


def make_photos(faces: Path, out: Path, copies: int) -> tuple[Path, list[Path]]:
    """A manifest of the labelled photos and `copies - 1` altered copies of each."""
    from PIL import Image, ImageOps

    out.mkdir(parents=True, exist_ok=True)
    rows, probes = [], []
    with open(faces / "labels.csv", newline="") as handle:
        labels = list(csv.DictReader(handle))
    for n, row in enumerate(labels):
        source = faces / row["path"]
        probes.append(source)
        rows.append((f"{row['identity']}", str(source)))
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            for c in range(1, copies):
                variant = ImageOps.mirror(image) if c % 2 else image
                scale = 1.0 - 0.15 * (c // 2 + (c % 2 == 0))
                if scale < 1.0:
                    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
                    variant = variant.resize(size)
                path = out / f"{n:04d}_{c}.jpg"
                variant.save(path, quality=92)
                rows.append((row["identity"], str(path)))
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "image"])
        writer.writerows(rows)
    return manifest, probes


def fill_synthetic(folder: Path, count: int, model) -> None:
    """Synthetic faces through the gallery's bulk API (one audited unit of work), then the
    index rebuilt as an enrolment of that size would leave it."""
    from workstation.audit.actions import AuditAction
    from workstation.gallery.index_build import rebuild_index
    from workstation.gallery.store import Gallery
    from workstation.progress import drain

    details = {"synthetic_faces": count, "purpose": "gui latency benchmark"}
    with Gallery(folder, user="bench") as gallery:
        # The index is rebuilt below from the database: not kept in step batch by batch.
        with gallery.change(AuditAction.ENROL, details, save_index=False) as change:
            fill_random(change, count, model)
        gallery.forget_index()
        drain(rebuild_index(gallery, reason="benchmark set-up"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--synthetic", type=int, default=300_000)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--no-search", action="store_true", help="enrolment only (to split causes)")
    ap.add_argument("--trace", action="store_true", help="name other threads' work in stalls")
    args = ap.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from workstation.gui.context import AppContext, CaseInfo
    from workstation.gui.enrol_panel import MODE_MANIFEST
    from workstation.gui.main_window import MainWindowWidget
    from workstation.vision.registry import create_engine

    work = Path(tempfile.mkdtemp(prefix="ws-gui-latency-"))
    os.environ["WORKSTATION_CONFIG_DIR"] = str(work / "config")
    os.environ["WORKSTATION_DATA_DIR"] = str(work / "data")
    try:
        manifest, probes = make_photos(args.faces, work / "photos", args.copies)
        photos = len(manifest.read_text().splitlines()) - 1
        model = create_engine().model
        t0 = time.perf_counter()
        if args.synthetic:
            fill_synthetic(work / "gallery", args.synthetic, model)
        setup_s = time.perf_counter() - t0

        app = QApplication.instance() or QApplication([])
        context = AppContext(work / "gallery", "bench")
        window = MainWindowWidget(context)
        window.show()
        context.set_case(CaseInfo("BENCH-1", "GUI latency benchmark"))
        enrol = window.panels["Gallery"].enrol_widget
        search_page = window.search_page

        gaps: list[float] = []
        last = [time.perf_counter()]
        started = [0.0]

        late: list[tuple[float, float]] = []  # (seconds since the start, stall ms)

        def on_tick() -> None:
            now = time.perf_counter()
            gaps.append((now - last[0]) * 1000)
            if gaps[-1] - TICK_MS > 50 and started[0]:
                late.append((round(now - started[0], 2), round(gaps[-1] - TICK_MS, 1)))
            last[0] = now

        # Watchdog: when a tick is late, note where the GUI thread is (to name a stall's cause).
        gui_thread = threading.get_ident()
        stall_sites: dict[str, int] = {}
        watching = [True]

        def watchdog() -> None:
            noted_for = 0.0
            while watching[0]:
                time.sleep(0.02)
                if last[0] != noted_for and time.perf_counter() - last[0] > 0.06:
                    noted_for = last[0]
                    frames = sys._current_frames()
                    frame = frames.get(gui_thread)
                    stack = traceback.extract_stack(frame)[-4:] if frame is not None else []
                    site = " < ".join(
                        f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack)
                    )
                    if args.trace:  # what the other threads were doing meanwhile
                        for ident, other in frames.items():
                            if ident not in (gui_thread, threading.get_ident()):
                                top = traceback.extract_stack(other)[-3:]
                                site += " || " + " < ".join(
                                    f"{Path(f.filename).name}:{f.lineno} {f.name}"
                                    for f in reversed(top)
                                )
                    stall_sites[site] = stall_sites.get(site, 0) + 1

        threading.Thread(target=watchdog, daemon=True).start()

        ticker = QTimer()
        ticker.setInterval(TICK_MS)
        ticker.timeout.connect(on_tick)

        state = {"enrol_done": False, "enrol_s": 0.0, "searching": False, "probe": 0}
        search_ms: list[float] = []
        search_errors: list[str] = []
        clicked = [0.0]

        def next_search() -> None:
            if args.no_search or state["enrol_done"] or state["searching"]:
                return
            state["searching"] = True
            path = probes[state["probe"] % len(probes)]
            state["probe"] += 7
            clicked[0] = time.perf_counter()
            search_page.probe.load_path(path)

        def on_probe_loaded(_probe: object) -> None:
            if search_page.probe.selected_face is None:
                state["searching"] = False
                QTimer.singleShot(200, next_search)
                return
            search_page.search_selected()

        def on_searched(_search_id: int) -> None:
            search_ms.append((time.perf_counter() - clicked[0]) * 1000)
            state["searching"] = False
            QTimer.singleShot(300, next_search)

        def on_search_failed(message: str) -> None:
            search_errors.append(message)
            state["searching"] = False
            QTimer.singleShot(300, next_search)

        def on_enrolled(_report: object) -> None:
            state["enrol_done"] = True
            state["enrol_s"] = time.perf_counter() - started[0]
            QTimer.singleShot(500, app.quit)

        search_page.probe.probe_loaded.connect(on_probe_loaded)
        search_page.search_recorded.connect(on_searched)
        search_page.search_failed.connect(on_search_failed)
        enrol.enrolment_finished.connect(on_enrolled)

        def start() -> None:
            last[0] = time.perf_counter()
            ticker.start()
            started[0] = time.perf_counter()
            enrol.set_mode(MODE_MANIFEST)
            enrol.path_edit.setText(str(manifest))
            enrol.start_button.click()
            QTimer.singleShot(500, next_search)

        QTimer.singleShot(200, start)
        QTimer.singleShot(int(args.timeout * 1000), app.quit)
        app.exec()
        watching[0] = False
        ticker.stop()
        context.pool.cancel_all()
        context.pool.wait(10_000)
        report = enrol.last_report
        stalls = np.asarray(gaps[1:]) - TICK_MS
        print(
            json.dumps(
                {
                    "gallery_faces_before": args.synthetic,
                    "photos": photos,
                    "setup_s": round(setup_s, 1),
                    "enrolled": getattr(report, "enrolled", None),
                    "enrol_failed": getattr(report, "failed", None),
                    "enrol_s": round(state["enrol_s"], 1),
                    "enrol_photos_per_s": round(photos / state["enrol_s"], 1)
                    if state["enrol_s"]
                    else None,
                    "ticks": len(gaps),
                    "max_stall_ms": round(float(stalls.max()), 1) if len(stalls) else None,
                    "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1) if gaps else None,
                    "stalls_over_50ms": int(np.sum(stalls > 50)),
                    "stalls_over_100ms": int(np.sum(stalls > 100)),
                    "searches": len(search_ms),
                    "search_errors": search_errors[:3],
                    "search_p50_ms": round(float(np.percentile(search_ms, 50)), 1)
                    if search_ms
                    else None,
                    "search_p95_ms": round(float(np.percentile(search_ms, 95)), 1)
                    if search_ms
                    else None,
                    "load": os.getloadavg(),
                    "stalls_at_s": late[:12],
                    "gui_thread_during_stalls": dict(
                        sorted(stall_sites.items(), key=lambda kv: -kv[1])[:8]
                    ),
                }
            ),
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
