"""Claim-level grounding measured: hand-written wrong and right explanations, and the local model's."""
