"""Credit scoring: feature families, the factor-grouped model, scale, reasons, reports."""
