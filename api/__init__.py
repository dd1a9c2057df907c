"""Data contracts of snn-dra: names, schemas and generated wire code. No behaviour lives here."""
