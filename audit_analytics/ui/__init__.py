"""Streamlit glue: URL state, cached loaders, shared widgets. The only part of the package
that imports streamlit; pages call into it and stay thin."""
