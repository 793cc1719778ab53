"""Placeholder, replaced by the readings of its notebooks."""
__all__ = []
