"""Request and response bodies of the API (camelCase JSON), separate from the stored documents."""
