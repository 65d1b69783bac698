"""Result tables: reference numbers transcribed from the papers and tables built from runs."""
