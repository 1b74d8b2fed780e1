"""Voices catalogue now; VAD/ASR/TTS engines behind small interfaces come with the engines issue."""
