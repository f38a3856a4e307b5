"""Generator of the typed Josev API bus module from the JSON schemas (`python -m tools.busgen`)."""
