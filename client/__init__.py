"""Python helpers for using a running dashboard from notebooks and scripts."""
