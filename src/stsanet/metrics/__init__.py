"""Saliency metrics: ``benchmark`` (MATLAB-faithful, for reporting), ``exact`` (exact ROC,
research only), ``fast`` (torch, validation only), ``loss`` (KL - CC), ``evaluate`` (protocol)."""
