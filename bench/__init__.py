"""Benchmarks of txtezosp2p (not tests): run ``python -m bench``."""
