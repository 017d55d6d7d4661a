"""Rows shaped like public datasets' published schemas, one module per import format, each with a
`rows(n, seed=...)` builder: the format tests read them and the import benchmark times them."""
