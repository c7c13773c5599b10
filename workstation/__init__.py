"""workstation: a face-search workstation for investigators.

A search result is an investigative lead for human review, never an identification.
"""

__version__ = "0.1.0"

CAVEAT = (
    "Face recognition gives investigative leads, not identifications. Scores depend on photo "
    "quality, pose, age gap and gallery size; false matches grow with the gallery. Every result "
    "must be reviewed by a trained person before anyone acts on it."
)
