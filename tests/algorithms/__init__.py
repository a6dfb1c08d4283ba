"""Tests of mlo_exp.algorithms."""
