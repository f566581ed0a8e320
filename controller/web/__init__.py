"""The browser pages: static files under static/, and the site icon drawn in code."""
