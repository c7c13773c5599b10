"""What recording reads costs (issue 11 item 5): events/s in the core, and the GUI while an
examiner scrolls and clicks through a large gallery's list.

Core: the same page read (`subject_page`, 200 subjects) N times, without and with its read
event (`record_read`: one signed audit event in a change of its own, witnessed), in the same
run; prints reads/s both ways and the cost per event.

GUI: the real Gallery tab, shown with a case, on a gallery of --subjects synthetic subjects
(one face each, random embeddings). For --seconds it scrolls the list to its end every 50 ms
(each scroll past the end fetches the next page on a worker) and chooses another subject every
250 ms (its photos are read on a worker), once with recording switched off (baseline) and once
as the program runs. A 10 ms QTimer on the GUI thread records every gap between its ticks; a
stall is a gap longer than the interval. Prints one JSON line per run: pages and subjects
shown, events written, max stall and 99th-percentile gap. A third run, "idle", shows the same
tab and only ticks (no scrolling, no choosing, no worker): the stalls the machine's load alone
causes this process, so starvation can be told from the reads' cost. The runs alternate
(idle, baseline, recorded, then again) and each line carries the 1-minute load average at its
start and end, since the machine is shared.

Run: python benchmarks/read_events.py [--subjects 300000] [--seconds 20] [--reads 200]
(offscreen unless QT_QPA_PLATFORM is set; data is deleted at the end)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from synthetic_gallery import fill_random

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 10


def fill(folder: Path, count: int) -> None:
    """`count` subjects with one synthetic face each, through the gallery's bulk API."""
    from workstation.audit.actions import AuditAction
    from workstation.gallery.store import Gallery
    from workstation.vision.registry import create_engine

    model = create_engine().model
    details = {"synthetic_faces": count, "purpose": "read events benchmark"}
    with (
        Gallery(folder, user="bench") as gallery,
        gallery.change(AuditAction.ENROL, details, save_index=False) as change,
    ):
        fill_random(change, count, model, subject_format="SYN-{:07d}")


def core_cost(folder: Path, reads: int) -> dict[str, Any]:
    from workstation.gallery.reads import Read, id_list, record_read
    from workstation.gallery.store import Gallery

    with Gallery(folder, user="bench") as gallery:
        t0 = time.perf_counter()
        for n in range(reads):
            gallery.subject_page(None, (n * 200) % 100_000, 200)
        plain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for n in range(reads):
            page = gallery.subject_page(None, (n * 200) % 100_000, 200)
            consulted = {
                "filtered": False,
                "offset": n * 200,
                "subjects": id_list(s.id for s in page),
            }
            record_read(gallery, Read.SUBJECT_LIST, consulted, "BENCH-1", "read events benchmark")
        recorded_s = time.perf_counter() - t0
    return {
        "run": "core",
        "reads": reads,
        "page_reads_per_s_without_event": round(reads / plain_s, 1),
        "page_reads_per_s_with_event": round(reads / recorded_s, 1),
        "events_per_s": round(reads / recorded_s, 1),
        "ms_per_event": round((recorded_s - plain_s) / reads * 1000, 2),
    }


def gui_run(folder: Path, seconds: float, record: bool, idle: bool = False) -> dict[str, Any]:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    import workstation.gui.gallery_manager as manager_module
    from workstation.gallery.store import Gallery
    from workstation.gui.context import AppContext, CaseInfo
    from workstation.gui.gallery_manager import GalleryManagerWidget

    real = manager_module.record_read_once
    if not record:
        manager_module.record_read_once = lambda *a, **k: None
    try:
        app = QApplication.instance() or QApplication([])
        with Gallery(folder, user="bench", read_only=True) as gallery:
            before = gallery.audit_head()[0]
        context = AppContext(folder, "bench")
        context.set_case(CaseInfo("BENCH-1", "read events benchmark"))
        widget = GalleryManagerWidget(context)
        widget.resize(1200, 800)
        widget.show()
        deadline = time.perf_counter() + 60
        while widget.subjects_model.rowCount() == 0 and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.005)
        view, model = widget.subjects_view, widget.subjects_model
        gaps: list[float] = []
        last = [time.perf_counter()]
        chosen = [0]

        def on_tick() -> None:
            now = time.perf_counter()
            gaps.append((now - last[0]) * 1000)
            last[0] = now

        def scroll() -> None:
            view.scrollToBottom()

        def choose() -> None:
            chosen[0] += 1
            row = (chosen[0] * 37) % max(1, model.rowCount())
            view.setCurrentIndex(model.index(row, 0))

        timers = []
        slots = ((TICK_MS, on_tick),) if idle else ((TICK_MS, on_tick), (50, scroll), (250, choose))
        load_start = os.getloadavg()[0]
        for interval, slot in slots:
            timer = QTimer()
            timer.setInterval(interval)
            timer.timeout.connect(slot)
            timer.start()
            timers.append(timer)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        for timer in timers:
            timer.stop()
        context.pool.cancel_all()
        context.pool.wait()
        app.processEvents()
        rows = model.rowCount()
        widget.close()
        with Gallery(folder, user="bench", read_only=True) as gallery:
            events = [e for e in gallery.audit_events() if e.seq > before]
        stalls = sorted(g - TICK_MS for g in gaps)
        if idle:
            run = "gui, idle (ticks only: the load's own stalls)"
        else:
            run = "gui, reads recorded" if record else "gui, baseline (no read events)"
        return {
            "run": run,
            "load_1min": [round(load_start, 1), round(os.getloadavg()[0], 1)],
            "seconds": seconds,
            "rows_shown": rows,
            "pages_shown": rows // model.page_size,
            "subjects_chosen": chosen[0],
            "events_written": len(events),
            "events_per_s": round(len(events) / seconds, 2),
            "max_stall_ms": round(max(stalls), 1) if stalls else None,
            "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1) if gaps else None,
            "p999_gap_ms": round(float(np.percentile(gaps, 99.9)), 1) if gaps else None,
            "gaps_over_100ms": sum(g > 100 for g in gaps),
        }
    finally:
        manager_module.record_read_once = real


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=300_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2, help="idle/baseline/recorded rounds")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ws-read-events-"))
    os.environ["WORKSTATION_CONFIG_DIR"] = str(work / "config")
    os.environ["WORKSTATION_DATA_DIR"] = str(work / "data")
    try:
        t0 = time.perf_counter()
        fill(work / "gallery", args.subjects)
        print(
            json.dumps({"setup_s": round(time.perf_counter() - t0, 1), "subjects": args.subjects})
        )
        core = core_cost(work / "gallery", args.reads)
        print(json.dumps({**core, "load_1min": round(os.getloadavg()[0], 1)}), flush=True)
        for _ in range(args.rounds):
            for record, idle in ((False, True), (False, False), (True, False)):
                line = gui_run(work / "gallery", args.seconds, record, idle)
                print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
