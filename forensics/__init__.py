"""Forensics: who leaked a copy. Reads the A/B watermark back from a captured file."""
