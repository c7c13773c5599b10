"""How long the footage player holds the GUI thread per frame step and per seek.

The clip is footage_speed.py's 720p 25 fps clip (real faces on a textured background, mp4v),
written to a temporary folder. The same actions (--steps single steps forward from frame 100,
then --seeks seeks to random frames) are run two ways in one run:

- baseline: decoding on the GUI thread, as the player did before (FrameReader.read and the
  QImage conversion called directly, timed per action);
- player: the real FootagePlayerWidget (frames decode on its own thread). A 5 ms QTimer on the
  GUI thread records every gap between its ticks while the actions run; the longest gap beyond
  the tick interval is the longest the GUI thread was held. Also printed: the time from asking
  for a frame to it being on screen.

Run: python benchmarks/footage_player.py [--seconds 30] [--steps 100] [--seeks 40]
(offscreen unless QT_QPA_PLATFORM is set)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

TICK_MS = 5


def _ms(values: list[float]) -> str:
    array = np.asarray(values) * 1000
    p50, p95, top = np.median(array), np.percentile(array, 95), array.max()
    return f"median {p50:.1f} ms, p95 {p95:.1f}, max {top:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeks", type=int, default=40)
    args = parser.parse_args()

    from footage_speed import make_clip
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from workstation.footage import FrameReader, probe_video
    from workstation.gui.footage_player import FootagePlayerWidget
    from workstation.gui.imaging import bgr_to_qimage
    from workstation.vision.registry import create_engine

    app = QApplication.instance() or QApplication([])
    engine = create_engine()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "bench_720p25.mp4"
        frames = make_clip(engine, clip, args.seconds)
        info = probe_video(clip)
        rng = np.random.default_rng(3)
        first = min(100, frames - args.steps - 1)
        actions = [first + i for i in range(args.steps + 1)]
        actions += [int(i) for i in rng.integers(0, frames, args.seeks)]
        print(f"clip: {frames} frames 1280x720 @ 25 fps, mp4v; cores: {os.cpu_count()}")

        # Baseline: what the player did on the GUI thread before (decode + convert).
        held: list[float] = []
        with FrameReader(info) as reader:
            for index in actions:
                started = time.perf_counter()
                bgr_to_qimage(reader.read(index))
                held.append(time.perf_counter() - started)
        steps, seeks = held[1 : args.steps + 1], held[args.steps + 1 :]
        print(f"baseline, decoding on the GUI thread: step {_ms(steps)}; seek {_ms(seeks)}")

        # The player: frames decode on its own thread; the GUI thread only shows them.
        player = FootagePlayerWidget()
        player.resize(960, 600)
        player.show()
        player.set_video(info)
        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(TICK_MS)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

        def settle() -> None:
            while not player.settled:
                app.processEvents()
                time.sleep(0.0005)

        settle()
        shown: list[float] = []
        gaps: list[float] = []
        for position, index in enumerate(actions):
            ticks.clear()
            timer.start()
            app.processEvents()
            started = time.perf_counter()
            player.seek(index)
            settle()
            shown.append(time.perf_counter() - started)
            deadline = time.perf_counter() + 2 * TICK_MS / 1000
            while time.perf_counter() < deadline:
                app.processEvents()
            timer.stop()
            if position and len(ticks) > 1:
                gaps.append(max(np.diff(ticks)) - TICK_MS / 1000)
        player.close_video()
        steps, seeks = gaps[: args.steps], gaps[args.steps :]
        print(f"player, decoding on its thread: GUI held per step {_ms(steps)}; seek {_ms(seeks)}")
        steps, seeks = shown[1 : args.steps + 1], shown[args.steps + 1 :]
        print(f"  asked to on screen: step {_ms(steps)}; seek {_ms(seeks)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
