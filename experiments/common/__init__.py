"""Pieces every launcher shares: summary statistics, tables and result files."""
