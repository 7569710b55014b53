"""Playback orchestration: decisions against the database, grants for the hot paths."""
