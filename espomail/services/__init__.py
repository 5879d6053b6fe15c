"""Use cases: each function takes the store and the acting user, and asks ``access`` first."""
