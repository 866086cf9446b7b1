"""Parse: P10 bytes in, DICOM JSON and frames out."""
