"""DFT codes in and out: input files for a plan's configurations, reading and matching outputs."""
