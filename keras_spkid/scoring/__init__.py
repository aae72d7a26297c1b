"""Scores people can use: AS-Norm score normalisation and threshold calibration."""
