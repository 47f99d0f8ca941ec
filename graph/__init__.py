"""Graph facts: the store protocol and its two stores, arrays exported from them, algorithms."""
