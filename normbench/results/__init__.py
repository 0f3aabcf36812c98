"""Results: the record schema (built in one place, ``records.build``) and the JSON Lines files."""
