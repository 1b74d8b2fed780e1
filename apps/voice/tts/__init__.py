"""Speech synthesis engines, text normalisation and the sentence chunker."""
