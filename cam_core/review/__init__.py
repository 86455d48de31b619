"""Review: analysts' verdicts, suspected label errors, calibration, gallery selection."""
