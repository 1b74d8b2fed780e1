"""Pure helpers shared by every app: prefixed ids, backend loading, HTTP error shapes."""
