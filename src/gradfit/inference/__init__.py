"""Inference: statistical summaries of a fit (OLS/WLS, quantile, Huber)."""
