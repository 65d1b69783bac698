"""Segmentation networks: a backbone registry and the heads that sit on top."""
