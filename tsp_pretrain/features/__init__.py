"""Sliding-window feature extraction, the feature folder format, and global video features."""
