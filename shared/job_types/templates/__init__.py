"""Email templates shipped with the project (data files: `<name>.txt.j2` and `<name>.html.j2`)."""
