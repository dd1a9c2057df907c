"""Hardware backends: the only code that knows how SNN hardware is found and reached."""
