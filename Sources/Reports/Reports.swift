/// Scoring a merge against its parents (`crucible score`, `crucible run`), the report it writes, and the
/// checkpoint views `crucible inspect` and `crucible compare`.
public enum Reports {}
