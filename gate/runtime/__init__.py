"""The runtime: the parts assembled once, the gate loop and its housekeeping, several cameras, annotation."""
