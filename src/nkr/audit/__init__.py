"""Population audit: a guideline's adherence measured over FHIR Bulk Data exports."""
