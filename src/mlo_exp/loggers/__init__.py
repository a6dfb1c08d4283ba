"""Loggers: one interface (:mod:`.base`), many backends. The run files are always written."""
