"""Pure planning for publishing an OASIS run to Sharkey: what to create, in which order."""
