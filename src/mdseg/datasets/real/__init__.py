"""Real datasets: registry, downloads, converters into the results contract."""
