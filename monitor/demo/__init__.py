"""`labormon demo`: the whole system in one process on embedded defaults."""
