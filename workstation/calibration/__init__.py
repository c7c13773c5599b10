"""Score calibration: how often a stranger scores this high (false-match rate, FMR).

Qt-free. `histogram` holds the counting maths, `reference` the shipped impostor table,
`gallery` the gallery's own calibration (stored, audited, recomputed by `workstation calibrate`).
"""
