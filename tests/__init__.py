"""Tests of txtezosp2p (run with ``python -m twisted.trial tests``)."""
