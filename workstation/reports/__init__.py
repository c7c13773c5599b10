"""Qt-free case reports: the JSON evidence bundle (the PDF is drawn by the desktop app)."""
