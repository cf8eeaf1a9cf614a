"""bids-infantage: infant brain age (0-24 months) from T1w, T2w and the T1w/T2w ratio."""

__version__ = "0.4.0"
__all__ = ["__version__"]
