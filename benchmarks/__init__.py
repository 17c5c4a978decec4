"""Reproducible performance harness (DESIGN §8): each module measures one contract and prints it against its target."""
