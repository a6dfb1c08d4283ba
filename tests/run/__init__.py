"""Tests of mlo_exp.run: one run's lifecycle."""
