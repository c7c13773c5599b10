"""workstation: a face-search workstation for investigators.

A search result is an investigative lead for human review, never an identification.
"""

import os

__version__ = "0.1.0"

CAVEAT = (
    "Face recognition gives investigative leads, not identifications. Scores depend on photo "
    "quality, pose, age gap and gallery size; false matches grow with the gallery. Every result "
    "must be reviewed by a trained person before anyone acts on it."
)

# FAISS runs on OpenMP (libgomp), whose threads by default keep spinning on a core for a while
# after every parallel region. During an enrolment the inference threads already use every core,
# and the spinning took CPU from them: process CPU per photo 86-98 ms against 76 ms with passive
# waiting ('fast', 140 development photos, 2 workers; docs/PERFORMANCE.md, "Keeping it fast").
# A 300,000-face exact search took as long either way (p50 22-26 ms). libgomp reads this when
# FAISS is first loaded, which is always after this package; a value in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
