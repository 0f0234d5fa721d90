"""Routing chat questions by meaning measured: labelled paraphrases and negatives, and their check."""
