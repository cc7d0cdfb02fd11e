"""Numerics: weighted moments, QR, chunked passes, compensated sums, the compiled kernel, dtype/device."""
