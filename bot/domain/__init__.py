"""Pure business rules: no framework, no database, no clock reads, no IO."""
