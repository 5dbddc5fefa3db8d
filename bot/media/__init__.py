"""Image rendering (profile cards, posters). CPU-bound: always called through a worker thread."""
