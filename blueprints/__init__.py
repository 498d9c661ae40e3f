"""One blueprint per capability; `function_app.py` registers them all."""
