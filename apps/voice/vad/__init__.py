"""Voice activity detection: a shared model per process, a stream (segmenter) per session."""
