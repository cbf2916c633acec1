"""Compatibility layers for applications written against the original Cortex router."""
