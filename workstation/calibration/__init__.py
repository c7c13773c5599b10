"""Score calibration: how often a stranger scores this high (false-match rate, FMR).

Qt-free and storage-free (it imports nothing of the gallery). `histogram` holds the counting
maths, `reference` the shipped impostor table, `impostors` the impostor histogram of a set of
embeddings with their subject labels, and `record` the calibration record and the FMR fields a
candidate shows. The gallery stores, loads and chooses calibrations
(workstation.gallery.calibration).
"""
