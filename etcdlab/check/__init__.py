"""The linearizability checker and ``invoke check-history``."""
