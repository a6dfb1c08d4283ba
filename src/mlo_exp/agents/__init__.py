"""Agents that play the TensorGame: one agent per file; :mod:`.base` holds the interface."""
