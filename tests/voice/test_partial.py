import numpy as np

from apps.voice.asr.partial import PartialTranscriber


def _speech(ms: int) -> np.ndarray:
    return np.ones(16 * ms, np.int16)


def test_partials_come_every_interval_once_enough_audio() -> None:
    partial = PartialTranscriber(interval_ms=1000, min_audio_ms=400)
    jobs = [partial.push(_speech(200)) for _ in range(12)]
    due = [i for i, job in enumerate(jobs) if job is not None]
    assert due == [4, 9]  # after 1.0 s and 2.0 s of speech
    assert len(jobs[4].audio) == 16 * 1000 and not jobs[4].speculative


def test_speculative_decode_becomes_the_final_transcript() -> None:
    partial = PartialTranscriber(interval_ms=5000)
    partial.push(_speech(1500))
    job = partial.silence_started()
    assert job is not None and job.speculative and job.end_sample == 16 * 1500
    partial.record(job, "hello world")
    # The turn ends 500 ms later: the trailing silence needs no decode.
    end_of_speech = 16 * 1500
    partial.push(np.zeros(16 * 500, np.int16))
    assert partial.final_job(end_of_speech) is None
    assert partial.final_text(end_of_speech) == "hello world"


def test_speech_after_the_speculative_decode_needs_a_new_final() -> None:
    partial = PartialTranscriber(interval_ms=5000)
    partial.push(_speech(1000))
    partial.record(partial.silence_started(), "hello")
    partial.push(_speech(800))  # the user went on
    end = partial.length
    job = partial.final_job(end)
    assert job is not None and len(job.audio) == end
    partial.record(job, "hello there friend")
    assert partial.final_text(end) == "hello there friend"


def test_nothing_to_decode_for_tiny_or_unchanged_audio() -> None:
    partial = PartialTranscriber(min_audio_ms=400)
    partial.push(_speech(100))
    assert partial.silence_started() is None
    partial.push(_speech(400))
    assert partial.silence_started() is not None
    assert partial.silence_started() is None


def test_a_partial_that_covers_everything_makes_the_speculative_decode_unneeded() -> None:
    partial = PartialTranscriber(interval_ms=1000)
    job = partial.push(_speech(1000))
    assert job is not None
    partial.record(job, "hello")
    assert partial.silence_started() is None
    assert (
        partial.final_job(job.end_sample) is None and partial.final_text(job.end_sample) == "hello"
    )
