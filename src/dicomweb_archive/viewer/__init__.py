"""The OHIF viewer served beside the archive: its build (npm) and its configuration."""
