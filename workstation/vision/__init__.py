"""Qt-free image loading, face detection, alignment, embedding and quality."""
